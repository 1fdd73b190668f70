"""The task-type contract: everything FusionDx does with one kind of target, in one class.

A task type (binary, multiclass, multilabel, regression, survival, box, mask, text) owns what
its targets mean from the manifest cell to the study report:

- **data**: the label columns it takes and how cells become a target array (:meth:`infer`,
  :meth:`fit`, :meth:`encode`, errors naming file, row, column and case), the strata splits keep
  (:meth:`split_key`, :meth:`stratification_key`, :meth:`stratum_names`), the training-split check;
- **model**: what its head is built with (:meth:`head_inputs`) and what its head's raw outputs
  are as numbers (:meth:`head_output`);
- **evaluation**: its metrics (:meth:`metrics_of`, calling the pure functions of
  :mod:`fusiondx.evaluation`), its columns of ``predictions.csv`` (:meth:`prediction_columns`),
  and the per-case scores the study bootstraps (:meth:`case_scores`, :meth:`strata`);
- **references**: the scikit-learn estimators that predict it (:meth:`estimators`, ...);
- **study**: its report metrics, samples and their HTML (:meth:`samples`, :meth:`samples_html`).

Task types sit just above ``types``/``errors``/``config``/``registry`` and ``evaluation``'s pure
maths: they import nothing of ``data``, ``heads``, ``models``, ``engine`` or ``study``. What they
need from those layers (opening an image file, a head's transforms, a rendered figure) comes in
as arguments. The heads that serve a type are named in :attr:`TaskType.heads` (strings), so
the data layer knows task types but no heads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from fusiondx.errors import ConfigError, DataError
from fusiondx.evaluation.bootstrap import Scorer

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig

OpenImage = Callable[[str, str, str, int], tuple[np.ndarray, Path]]
"""``(cell, column, case id, manifest line) -> (decoded image (C, *S), its path)``; errors name
the case, line and column."""


@dataclass(frozen=True)
class TaskInfo:
    """A task's type, label columns and what was fixed before training; saved with the run.

    ``classes`` is the class list of classification tasks (empty otherwise); ``image`` the image
    modality of localization and segmentation tasks; ``state`` what was fitted on the training
    split (a generation task's vocabulary, a survival task's time bins, ...).
    """

    name: str
    type: str  # a registered task type: fusiondx.registry.TASK_TYPES
    classes: tuple[str, ...]
    label: tuple[str, ...]
    label_separator: str | None = None
    image: str | None = None
    state: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_classification(self) -> bool:
        from fusiondx.tasks._lookup import task_type

        return task_type(self).is_classification

    @property
    def num_outputs(self) -> int:
        from fusiondx.tasks._lookup import task_type

        return task_type(self).num_outputs(self)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["classes"], d["label"] = list(self.classes), list(self.label)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInfo:
        return cls(
            name=str(d["name"]),
            type=str(d["type"]),
            classes=tuple(d["classes"]),
            label=tuple(d["label"]),
            label_separator=d.get("label_separator"),
            image=d.get("image"),
            state=dict(d.get("state") or {}),
        )


@dataclass(frozen=True)
class LabelSource:
    """What :meth:`TaskType.encode` reads: the manifest rows, their case ids, the config, and
    (from the data layer, which knows the readers) a way to open an image file of the manifest."""

    df: pd.DataFrame
    ids: pd.Series | None
    cfg: Config | None = None
    open_image: OpenImage | None = None


class Shown(NamedTuple):
    """One model whose test predictions a study shows as samples."""

    id: str
    label: str
    frame: pd.DataFrame  # its first replicate's test predictions, indexed by case id


@dataclass
class Example:
    """A tiny synthetic task of one type, which the common test suite runs every type on.

    ``labels`` holds the manifest columns the task reads (label cells, and the image column of
    types drawn on images), ``files`` the decoded arrays (C, *S) of the files cells name, and
    ``modalities`` the config modalities the task needs. ``perfect`` maps encoded targets to the
    outputs (as :meth:`TaskType.head_output` gives them) that score best, ``noise`` to outputs of
    a model that learned nothing. ``bad`` is (row position, column, cell): a cell the type
    refuses with a DataError, or None when every cell is valid.
    """

    task: dict[str, Any]
    labels: pd.DataFrame
    perfect: Callable[[np.ndarray], np.ndarray]
    noise: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    bad: tuple[int, str, str] | None
    files: dict[str, np.ndarray] = field(default_factory=dict)
    modalities: list[dict[str, Any]] = field(default_factory=list)


def label_columns(task: TaskConfig) -> tuple[str, ...]:
    return (task.label,) if isinstance(task.label, str) else tuple(task.label)


N_SAMPLES = 6  # test cases a study shows per model


def spread(candidates: np.ndarray, n: int = N_SAMPLES) -> np.ndarray:
    """Evenly spaced picks, so the samples are not the first rows of a sorted table."""
    if len(candidates) <= n:
        return candidates
    return candidates[np.linspace(0, len(candidates) - 1, n).round().astype(int)]


def case_weights(idx: np.ndarray | None, n: int) -> np.ndarray | None:
    """Bootstrap indices -> case weights (B, n), as :mod:`fusiondx.evaluation.weights` takes them."""
    from fusiondx.evaluation.weights import weights_from_indices

    return None if idx is None else weights_from_indices(idx, n)


def weighted(metric: Callable[[np.ndarray | None], Any], n: int) -> Scorer:
    """A :data:`Scorer` from a metric of case weights (B, n) (None: every case once)."""
    return lambda idx: metric(case_weights(idx, n))


def no_training(info: TaskInfo, what: str) -> None:
    """Raise: the training split has no case with ``what`` (a value, an event, a box, ...)."""
    raise DataError(
        f"The training split of task '{info.name}' has no {what}.",
        column=",".join(info.label),
        fix=f"add training cases with a {what}, or check the label column",
    )


class TaskType:
    """Base class of task types (subclasses register with ``@register_task_type(name)``).

    Instances hold no state: every method takes the :class:`TaskInfo` it works on.

    Class attributes:
        heads: names of the heads that serve this type (the config's ``tasks[].head``).
        declared_only: a task is of this type only when ``tasks[].type`` names it (another
            type is its head's default).
        is_classification: classes, class weights, probabilities (late fusion can combine them).
        class_indices: targets are class indices (N,): one class per case (binary, multiclass).
        may_be_empty: an empty label cell is allowed (no lesion, no reference, not measured).
        checked_per_cell: every label cell is checked before any file is read, and every bad
            cell is reported (``fusiondx validate``); other types are checked while encoding.
        metrics: the metrics the study reports with CIs (and may select), in table order.
        table_metrics: the report table's fixed metric columns (None: the metrics as reported).
        curves: the study draws ROC, PR and calibration curves and runs DeLong's test.
        baseline_without_input: the study adds a model that sees no input as a baseline.
        estimator_labels: per reference family (``linear``, ``trees``), the scikit-learn model
            that predicts this type; empty when no reference can.
    """

    registered_name: ClassVar[str]
    heads: ClassVar[tuple[str, ...]] = ()
    declared_only: ClassVar[bool] = False
    is_classification: ClassVar[bool] = False
    class_indices: ClassVar[bool] = False
    may_be_empty: ClassVar[bool] = False
    checked_per_cell: ClassVar[bool] = False
    metrics: ClassVar[tuple[str, ...]] = ()
    table_metrics: ClassVar[tuple[str, ...] | None] = None
    curves: ClassVar[bool] = False
    baseline_without_input: ClassVar[bool] = False
    estimator_labels: ClassVar[Mapping[str, str]] = {}
    dense_features: ClassVar[bool] = False
    """The references' estimator needs dense, finite and not too many feature columns."""
    no_stacking: ClassVar[str] = ""
    """Why the references cannot stack per-modality estimators for this type ("" if they can)."""
    no_reference_note: ClassVar[str] = ""
    """Appended to "no scikit-learn estimator predicts ... targets" in the study."""

    @property
    def name(self) -> str:
        return type(self).registered_name

    # ------------------------------------------------------------------ data

    def infer(self, task: TaskConfig, df: pd.DataFrame, cfg: Config | None) -> TaskInfo:
        """Check the label columns against the config and fix what the type needs (classes,
        the image modality); the default takes exactly one label column."""
        cols = label_columns(task)
        if len(cols) != 1:
            raise ConfigError(
                f"Task '{task.name}' ({task.head}) takes one column name as label, got {list(cols)}.",
                fix=f"set tasks[{task.name}].label to one column name",
            )
        return TaskInfo(task.name, self.name, (), cols)

    def fit(
        self, info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: TaskConfig
    ) -> TaskInfo:
        """What the type learns from the training cases (a vocabulary, time bins); default none."""
        return info

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        """The target array of every manifest row (N, ...), in manifest order.

        A bad cell raises a :class:`DataError` naming its row, column and case. Types with
        :attr:`checked_per_cell` append every bad cell to ``errors`` instead when it is given
        (skipping empty cells, which the manifest checks report)."""
        raise NotImplementedError

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        """Per-case strata to split on, from the label cells (no file is read)."""
        return self.stratification_key(info, self.encode(info, src))

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        """A per-case string to stratify on, from encoded targets."""
        return np.full(len(y), "all")

    def stratum_names(self, info: TaskInfo) -> dict[str, str] | None:
        """Readable names of the strata that every held-out split must hold, because the
        metric is undefined without them; None where a split may lack a stratum."""
        return None

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        """Raise a DataError when the training split's targets cannot train the head."""

    def split_counts(self, info: TaskInfo, y: np.ndarray) -> dict[str, int]:
        """Cases per class (or stratum) among these targets, for the study's data summary."""
        keys, counts = np.unique(self.stratification_key(info, y), return_counts=True)
        return {str(k): int(c) for k, c in zip(keys, counts, strict=True)}

    def num_outputs(self, info: TaskInfo) -> int:
        return len(info.classes)

    def image_modality(self, task: TaskConfig, cfg: Config | None) -> str | None:
        """The image modality the targets are drawn on (boxes, masks), which every model keeps."""
        return None

    # ------------------------------------------------------------------ model

    def head_inputs(self, info: TaskInfo) -> dict[str, Any]:
        """What the data fixed that a head may take as constructor arguments."""
        known: dict[str, Any] = {"num_classes": len(info.classes), "task": info.type, **info.state}
        known.pop("tokenizer", None)
        return known

    def head_output(self, info: TaskInfo, head: Any, raw: Any) -> np.ndarray:
        """A head's predictions (CPU tensor) as the numbers :meth:`prediction_columns` takes."""
        return raw.numpy()

    def balanced_weights(self, info: TaskInfo, y: np.ndarray) -> list[float]:
        """Class weights balancing the training targets ``y`` (classification types only)."""
        raise NotImplementedError(f"{self.name} tasks have no class weights")

    # ------------------------------------------------------------------ evaluation

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The metrics a trained head reports, from :meth:`head_output`-like outputs and targets."""
        raise NotImplementedError

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        """This task's columns of ``predictions.csv`` (``y`` None where labels are unknown)."""
        raise NotImplementedError

    def frame_calls(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        """The class calls a run made at its stored decision threshold, where it has one."""
        return None

    def output_columns(self, info: TaskInfo, frame: pd.DataFrame) -> list[str]:
        """The columns of a predictions table that hold the model's answers (not the truth)."""
        return [f"{info.name}_pred"]

    def constant(self, info: TaskInfo, frame: pd.DataFrame) -> bool:
        """Whether a model's predictions do not vary over these cases."""
        v = frame[self.output_columns(info, frame)].to_numpy(np.float64)
        return len(v) > 1 and bool(np.all(np.nanmax(v, axis=0) - np.nanmin(v, axis=0) < 1e-6))

    def frame_truth(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        """The targets written in a predictions table (classification types: for curves,
        confusion matrices and DeLong's test)."""
        raise NotImplementedError(f"{self.name} tasks have no class targets")

    def frame_probs(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        """The probabilities written in a predictions table (classification types)."""
        raise NotImplementedError(f"{self.name} tasks have no class probabilities")

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        """Per metric of :attr:`metrics`, a :data:`Scorer` over the cases of a predictions table
        (cases in order), so the study bootstraps any metric without the model."""
        raise NotImplementedError

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        """Strata the study's bootstrap resamples within (None: no stratification)."""
        return None

    def score(self, info: TaskInfo, head: Any, raw: Any, y: np.ndarray, metric: str) -> float:
        """One metric of a head's raw predictions (robustness: modalities taken away)."""
        import torch

        return float(head.evaluate(raw, torch.from_numpy(y))[metric])

    # ------------------------------------------------------------------ references

    def reference_unavailable(self) -> str | None:
        """Why the references cannot predict this type here (a missing library), or None."""
        return None

    def estimators(
        self, family: str, seed: int, balanced: bool
    ) -> list[tuple[dict[str, Any], Any]]:
        """(grid point, unfitted estimator) pairs of a reference family, most regularised first;
        a tie on validation keeps the earlier, simpler candidate."""
        raise NotImplementedError(f"no scikit-learn estimator predicts {self.name} targets")

    def fit_target(self, y: np.ndarray) -> Any:
        """Targets as the estimator takes them."""
        return np.asarray(y)

    def estimator_outputs(self, estimator: Any, X: Any, info: TaskInfo) -> np.ndarray:
        """A fitted estimator's answers, as :meth:`prediction_columns` takes them."""
        return np.asarray(estimator.predict(X), dtype=np.float64)

    def stacking(
        self, estimators: list[tuple[str, Any]], cv: Any
    ) -> list[tuple[dict[str, Any], Any]]:
        """Cross-fitted stacking of fitted per-modality estimators (``cv``: the folds)."""
        raise NotImplementedError(self.no_stacking or f"no stacking for {self.name} targets")

    # ------------------------------------------------------------------ study

    def example(self, n: int, rng: np.random.Generator) -> Example:
        """A tiny synthetic task of this type with ``n`` cases (see :class:`Example`)."""
        raise NotImplementedError(
            f"task type '{self.name}' gives no example for the common test suite"
        )

    def samples(
        self, info: TaskInfo, a: Shown, b: Shown, load_image: Callable[[str], np.ndarray]
    ) -> dict[str, Any] | None:
        """A few test cases of two models to look at (``kind`` is the type's name); None when
        the type is scored rather than read or seen. A ``figure`` may be a matplotlib figure
        (the study stores it as an image)."""
        return None

    def samples_html(
        self, samples: dict[str, Any], name: Callable[[str], str], figure: Callable[[str, str], str]
    ) -> str:
        """The report's rendering of :meth:`samples`: ``name`` gives an entry's display name,
        ``figure(uri, caption)`` an HTML figure."""
        return ""
