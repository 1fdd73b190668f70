"""Multilabel classification: any number of labels per case, one independent probability each.

Labels come as one 0/1 column per label (``label: [a, b, c]``) or as one column of names split by
``label_separator`` (``none`` or an empty cell: no label). ``predictions.csv``: ``t_true`` and
``t_pred`` (labels ``;``-joined, ``none`` when no label is set), ``t_prob_<label>`` per label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError, case_of, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import Example, LabelSource, TaskInfo
from fusiondx.tasks._classification import Classification, _report


@register_task_type("multilabel")
class Multilabel(Classification):
    """0/1 per label (N, K) float targets, one sigmoid per label."""

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        df, ids, skip_empty = src.df, src.ids, errors is not None
        out = np.zeros((len(df), len(info.classes)), dtype=np.float32)
        if info.label_separator is None:
            for k, col in enumerate(info.label):
                empty = df[col].isna().to_numpy()
                for pos, v in enumerate(df[col].astype(str).str.strip()):
                    if v in ("0", "1", "0.0", "1.0"):
                        out[pos, k] = float(v)
                    elif not (skip_empty and empty[pos]):
                        _report(
                            errors,
                            DataError(
                                f"A multilabel column holds '{v}', not 0 or 1.",
                                row=line_of(pos),
                                column=col,
                                case_id=case_of(ids, pos),
                                fix="use 0 or 1 in each label column",
                            ),
                        )
            return out
        index = {c: i for i, c in enumerate(info.classes)}
        sep = info.label_separator or ";"
        for pos, v in enumerate(df[info.label[0]].astype(str)):
            for part in (p.strip() for p in v.split(sep)):
                if not part or part.lower() == "none":
                    continue
                if part not in index:
                    if skip_empty and pd.isna(df[info.label[0]].iloc[pos]):
                        continue
                    _report(
                        errors,
                        DataError(
                            f"The label '{part}' is not one of the declared classes {list(info.classes)}.",
                            row=line_of(pos),
                            column=info.label[0],
                            case_id=case_of(ids, pos),
                            fix="correct the label, or add it to tasks[].classes",
                        ),
                    )
                    continue
                out[pos, index[part]] = 1.0
        return out

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        """The rarest label a case has ("none" without one)."""
        order = np.argsort(y.sum(axis=0))
        keys = np.full(len(y), "none", dtype=object)
        for k in order[::-1]:  # rarest last so it wins
            keys[y[:, k] > 0] = str(k)
        return keys.astype(str)

    def stratum_names(self, info: TaskInfo) -> dict[str, str] | None:
        return None  # a split may lack the rarest-label stratum and still score every label

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        for k, c in enumerate(info.classes):
            if len(np.unique(y[:, k])) < 2:
                raise DataError(
                    f"In the training split every case has the same value for label '{c}' of task '{info.name}'.",
                    fix="drop that label from tasks[].classes, or add cases with and without it",
                )

    def split_counts(self, info: TaskInfo, y: np.ndarray) -> dict[str, int]:
        return {c: int(y[:, k].sum()) for k, c in enumerate(info.classes)}

    def balanced_weights(self, info: TaskInfo, y: np.ndarray) -> list[float]:
        return [float((len(y) - p) / max(p, 1)) for p in y.sum(0)]

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        probs = np.asarray(output).reshape(len(output), -1)
        t = info.name
        cols: dict[str, Any] = {}
        if y is not None:
            cols[f"{t}_true"] = [_labels(info, row) for row in y]
        for k, c in enumerate(info.classes):
            cols[f"{t}_prob_{c}"] = probs[:, k]
        cols[f"{t}_pred"] = [_labels(info, row >= 0.5) for row in probs]
        return cols

    def frame_truth(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        true = frame[f"{info.name}_true"].astype(str)
        return np.array([[int(c in set(v.split(";"))) for c in info.classes] for v in true])

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        return None  # label sets have no single class to keep

    def estimators(
        self, family: str, seed: int, balanced: bool
    ) -> list[tuple[dict[str, Any], Any]]:
        """One-vs-rest over the labels of :meth:`Classification.estimators`."""
        from sklearn.multiclass import OneVsRestClassifier

        return [(p, OneVsRestClassifier(e)) for p, e in super().estimators(family, seed, balanced)]

    def fit_target(self, y: np.ndarray) -> Any:
        return np.asarray(y)

    def estimator_outputs(self, estimator: Any, X: Any, info: TaskInfo) -> np.ndarray:
        return np.asarray(estimator.predict_proba(X))

    def stacking(
        self, estimators: list[tuple[str, Any]], cv: Any
    ) -> list[tuple[dict[str, Any], Any]]:
        from sklearn.multiclass import OneVsRestClassifier

        return [(p, OneVsRestClassifier(e)) for p, e in super().stacking(estimators, cv)]

    def example(self, n: int, rng: np.random.Generator) -> Example:
        return _example(n, rng)


def _example(n: int, rng: np.random.Generator) -> Example:
    on = rng.random((n, 3)) < 0.5
    on[:2] = [[True] * 3, [False] * 3]  # every label present and absent
    cells = [";".join(c for c, x in zip("xyz", row, strict=True) if x) or "none" for row in on]
    return Example(
        {
            "name": "findings",
            "label": "findings",
            "label_separator": ";",
            "classes": ["x", "y", "z"],
        },
        pd.DataFrame({"findings": cells}),
        perfect=lambda t: t.astype(np.float32),
        noise=lambda t, g: g.random(t.shape).astype(np.float32),
        bad=(2, "findings", "x;w"),
    )


def _labels(info: TaskInfo, row: np.ndarray) -> str:
    names = [c for c, on in zip(info.classes, row, strict=True) if on]
    return ";".join(names) if names else "none"
