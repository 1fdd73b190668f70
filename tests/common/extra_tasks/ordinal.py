"""Ordinal grades (none < mild < moderate < severe), learnt by the regression head as a rank.

The worked example of docs/extending.md ("Adding a task type"): as ``src/fusiondx/tasks/ordinal.py``
it is a new task type, ``tasks: [{label: severity, head: regression, type: ordinal, classes: [...]}]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.errors import ConfigError, DataError, case_of, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import Example, LabelSource, TaskInfo
from fusiondx.tasks.regression import Regression


@register_task_type("ordinal")
class Ordinal(Regression):
    """An ordered grade per case, as its rank 0..K-1: scored by MAE, RMSE and R² in grades."""

    declared_only = True  # the regression head's default stays `regression`
    may_be_empty = False

    def infer(self, task: Any, df: pd.DataFrame, cfg: Any) -> TaskInfo:
        if not task.classes:
            raise ConfigError(
                f"Task '{task.name}' is ordinal but lists no grades.",
                fix=f"set tasks[{task.name}].classes to the grades, lowest first",
            )
        return replace(super().infer(task, df, cfg), classes=tuple(task.classes))

    def fit(self, info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: Any) -> TaskInfo:
        y = self.encode(info, LabelSource(df, None))[train]
        return replace(
            info, state={"target_mean": float(y.mean()), "target_std": float(y.std()) or 1.0}
        )

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        col, rank = info.label[0], {c: float(k) for k, c in enumerate(info.classes)}
        cells = src.df[col].astype(str).str.strip()
        for pos, v in enumerate(cells):
            if v not in rank:
                raise DataError(
                    f"The grade '{v}' is not one of {list(info.classes)}.",
                    row=line_of(pos),
                    column=col,
                    case_id=case_of(src.ids, pos),
                    fix="use a grade of tasks[].classes",
                )
        return cells.map(rank).to_numpy(np.float32)

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        return (
            src.df[info.label[0]].astype(str).str.strip().to_numpy()
        )  # every grade in every split

    def example(self, n: int, rng: np.random.Generator) -> Example:
        grades = ["none", "mild", "moderate", "severe"]
        return Example(
            {
                "name": "severity",
                "head": "regression",
                "label": "severity",
                "type": "ordinal",
                "classes": grades,
            },
            pd.DataFrame({"severity": np.array(grades)[rng.permutation(np.arange(n) % 4)]}),
            perfect=lambda t: t.copy(),
            noise=lambda t, g: g.uniform(0, 3, len(t)).astype(np.float32),
            bad=(2, "severity", "extreme"),
        )
