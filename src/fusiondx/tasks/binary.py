"""Binary classification: two classes, one probability (of the second, positive class) per case.

``predictions.csv``: ``t_true``, ``t_prob_<positive class>``, ``t_pred`` (threshold 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import Example, LabelSource, TaskInfo
from fusiondx.tasks._classification import Classification


@register_task_type("binary")
class Binary(Classification):
    """Two classes; the second of ``classes`` is the positive one (float targets 0/1)."""

    class_indices = True
    metrics = (*Classification.metrics, "sensitivity")
    curves = True

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        return super().encode(info, src, errors).astype(np.float32)

    def num_outputs(self, info: TaskInfo) -> int:
        return 1

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        p = np.asarray(output).reshape(len(output), -1)[:, 0]
        t, classes = info.name, info.classes
        cols: dict[str, Any] = {}
        if y is not None:
            cols[f"{t}_true"] = [classes[int(v)] for v in y]
        cols[f"{t}_prob_{classes[1]}"] = p
        cols[f"{t}_pred"] = [classes[int(v >= 0.5)] for v in p]
        return cols

    def frame_probs(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        return frame[f"{info.name}_prob_{info.classes[1]}"].to_numpy(float)

    def estimator_outputs(self, estimator: Any, X: Any, info: TaskInfo) -> np.ndarray:
        proba = estimator.predict_proba(X)
        return (
            proba[:, list(estimator.classes_).index(1)]
            if 1 in estimator.classes_
            else np.zeros(len(proba))
        )

    def example(self, n: int, rng: np.random.Generator) -> Example:
        y = rng.permutation(np.arange(n) % 2)
        return Example(
            {"name": "dx", "label": "dx", "classes": ["no", "yes"]},
            pd.DataFrame({"dx": np.where(y == 1, "yes", "no")}),
            perfect=lambda t: t.astype(np.float32)[:, None],
            noise=lambda t, g: g.random((len(t), 1)).astype(np.float32),
            bad=(3, "dx", "maybe"),
        )
