"""The reference contract: a plain, well-kept model a study trains beside its neural entries.

A study asks of every fusion "does a simpler model do as well?". References answer it with
scikit-learn: each is a feature transformer over the study's :class:`CaseTable` (what one
modality, all of them, or only which inputs are present look like as numbers) followed by an
estimator family (``linear`` or ``trees``) whose estimators the task type gives
(:meth:`fusiondx.tasks.TaskType.estimators`). Every reference is

- trained on the same training cases as the neural models,
- tuned on the same validation cases (a small grid, by the study's metric),
- scored on the same test cases, and written as an ordinary run folder (``predictions.csv``,
  ``metrics.json``), so the study compares it with the same bootstrap and paired tests.

``kind`` is ``reference`` (a baseline to beat) or ``probe`` (a shortcut detector: a model that
should *not* do well, such as one that sees only which inputs are present).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from fusiondx.configurable import Configurable
from fusiondx.references._table import CaseTable
from fusiondx.registry import TASK_TYPES
from fusiondx.tasks import TaskInfo, task_type


@dataclass
class Fitted:
    """One reference trained on one split: the chosen grid point and its outputs."""

    params: dict[str, Any]
    val: np.ndarray
    test: np.ndarray
    val_score: float
    seconds: float
    n_features: int


class Reference(Configurable):
    """Base class of study references and probes (subclasses register with ``@register_reference``).

    Subclasses set ``inputs`` (a modality kind: one entry per modality of that kind; ``all``:
    every modality together; ``presence`` or ``metadata``: probes), ``features_label`` (what the
    table calls the features), ``family`` and implement :meth:`features`.
    """

    kind: ClassVar[str] = "reference"
    inputs: ClassVar[str] = ""
    family: ClassVar[str] = "linear"
    features_label: ClassVar[str] = ""
    task_types: ClassVar[tuple[str, ...]] = tuple(
        e.name for e in TASK_TYPES.entries() if e.cls.estimator_labels
    )
    """The task types it predicts: by default every type that has scikit-learn estimators."""
    needs_base: ClassVar[bool] = False
    """True for references built on the per-modality references fitted before them (stacking)."""

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        """Why this reference cannot run on this data and task (None when it can)."""
        if task.type not in self.task_types:
            return f"no {self.features_label} model for {task.type} tasks"
        return task_type(task).reference_unavailable()

    def features(self, table: CaseTable, group: str | None) -> Any:
        """An unfitted scikit-learn transformer from the whole table to this reference's features."""
        raise NotImplementedError

    def label(self, group: str | None, task: TaskInfo) -> str:
        model = task_type(task).estimator_labels.get(self.family, "a scikit-learn model")
        where = f"{group}: " if group and self.inputs not in ("all", "presence", "metadata") else ""
        return f"{where}{self.features_label} + {model}"

    def candidates(
        self,
        table: CaseTable,
        group: str | None,
        task: TaskInfo,
        seed: int,
        balanced: bool,
        y_train: np.ndarray,
        groups: np.ndarray | None,
        base: dict[str, tuple[Reference, dict[str, Any]]] | None = None,
    ) -> list[tuple[dict[str, Any], Any]]:
        """(params, unfitted pipeline) pairs to tune on validation; ``base`` maps a modality to its
        best fitted reference and grid point (for references with ``needs_base``)."""
        from sklearn.base import clone
        from sklearn.pipeline import make_pipeline

        tt = task_type(task)
        feats = self.features(table, group)
        if tt.dense_features:
            feats = make_pipeline(feats, *_dense_steps())
        return [
            (p, make_pipeline(clone(feats), e))
            for p, e in tt.estimators(self.family, seed, balanced)
        ]

    def fit(
        self,
        table: CaseTable,
        group: str | None,
        task: TaskInfo,
        y: np.ndarray,
        split: np.ndarray,
        metric: str,
        seed: int,
        balanced: bool = False,
        groups: np.ndarray | None = None,
        base: dict[str, tuple[Reference, dict[str, Any]]] | None = None,
    ) -> Fitted:
        """Train every grid point on train, keep the best on validation, predict val and test."""
        start = time.perf_counter()
        tr, va, te = (split == s for s in ("train", "val", "test"))
        tt = task_type(task)
        y_fit = tt.fit_target(y[tr])
        grid = self.candidates(
            table, group, task, seed, balanced, y[tr], None if groups is None else groups[tr], base
        )
        X = table.frame  # read after candidates(): a reference may add its columns (embeddings)
        best: tuple[float, dict[str, Any], Any, np.ndarray] | None = None
        # One OpenMP thread: gradient boosting's threads spin-wait when trainings or other
        # processes hold the cores, and small fits gain nothing from a second thread.
        with threadpool_limits(limits=1, user_api="openmp"):
            for params, model in grid:
                model.fit(X[tr], y_fit)
                out = tt.estimator_outputs(model, X[va], task)
                score = score_of(metric, task, y[va], out)
                if best is None or (np.isfinite(score) and not score <= best[0]):
                    best = (score, params, model, out)  # a tie keeps the earlier, simpler candidate
        assert best is not None
        score, params, model, val_out = best
        with threadpool_limits(limits=1, user_api="openmp"):
            test_out = tt.estimator_outputs(model, X[te], task)
        return Fitted(
            params,
            val_out,
            test_out,
            float(score),
            time.perf_counter() - start,
            _n_features(model, X[tr][:5]),
        )


def score_of(metric: str, task: TaskInfo, y: np.ndarray, out: np.ndarray) -> float:
    """The study's metric of these outputs (what tuning maximises)."""
    m = metrics_of(task, y, out).get(metric)
    return float(m) if isinstance(m, (int, float)) else float("nan")


def metrics_of(task: TaskInfo, y: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    """The same metrics a trained head reports in metrics.json, from a reference's outputs."""
    return task_type(task).metrics_of(task, out, y)


def _dense_steps() -> list[Any]:
    """Dense, finite and not too many columns (the Cox model needs them)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from fusiondx.references._steps import AtMostColumns

    return [
        FunctionTransformer(_dense, accept_sparse=True),
        SimpleImputer(),
        StandardScaler(),
        AtMostColumns(32),
    ]


def _dense(x: Any) -> Any:
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x, dtype=np.float64)


def _n_features(model: Any, sample: Any) -> int:
    """Width of what the estimator sees (after every transformer of the pipeline)."""
    try:
        return int(model[:-1].transform(sample).shape[1])
    except Exception:  # noqa: BLE001  (a count for the table, never worth failing a study)
        return -1
