"""Multiclass classification: one of three or more classes per case, probabilities summing to 1.

``predictions.csv``: ``t_true``, ``t_prob_<class>`` per class, ``t_pred`` (the most probable).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.registry import register_task_type
from fusiondx.tasks._base import Example, TaskInfo
from fusiondx.tasks._classification import Classification


@register_task_type("multiclass")
class Multiclass(Classification):
    """One class per case among ``classes`` (int64 class indices), softmax probabilities."""

    class_indices = True

    def estimator_outputs(self, estimator: Any, X: Any, info: TaskInfo) -> np.ndarray:
        proba = estimator.predict_proba(X)
        out = np.zeros((len(proba), len(info.classes)))
        out[:, np.asarray(estimator.classes_, dtype=int)] = proba  # a class unseen in train: 0
        return out

    def example(self, n: int, rng: np.random.Generator) -> Example:
        y = rng.permutation(np.arange(n) % 3)
        return Example(
            {"name": "stage", "label": "stage"},
            pd.DataFrame({"stage": np.array(["a", "b", "c"])[y]}),
            perfect=lambda t: np.eye(3, dtype=np.float32)[t],
            noise=lambda t, g: g.dirichlet(np.ones(3), len(t)).astype(np.float32),
            bad=(5, "stage", "d"),
        )
