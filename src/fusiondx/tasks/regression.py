"""Regression of a continuous value (a lab value, length of stay, a score).

Targets: float32 (N,), NaN where the label cell is empty (left out of loss and metrics).
``predictions.csv``: ``t_true``, ``t_pred``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError, case_of, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import (
    Example,
    LabelSource,
    Scorer,
    TaskInfo,
    TaskType,
    no_training,
    weighted,
)

if TYPE_CHECKING:
    from fusiondx.config import TaskConfig


@register_task_type("regression")
class Regression(TaskType):
    """A number per case; the head learns it standardised by the training split's mean and std."""

    heads = ("regression",)
    may_be_empty = True
    metrics = ("mae", "rmse", "r2")
    estimator_labels = {"linear": "ridge regression", "trees": "gradient boosting"}

    def fit(
        self, info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: TaskConfig
    ) -> TaskInfo:
        y = pd.to_numeric(df[info.label[0]][train], errors="coerce").dropna().to_numpy(np.float64)
        if len(y) < 2:
            raise DataError(
                f"Fewer than two training cases of task '{info.name}' have a value.",
                column=info.label[0],
                fix="fill the target column for training cases",
            )
        return replace(
            info, state={"target_mean": float(y.mean()), "target_std": float(y.std()) or 1.0}
        )

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        col = info.label[0]
        raw = src.df[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero((values.isna() & raw.notna()).to_numpy())
        if len(bad):
            i = int(bad[0])
            raise DataError(
                f"The regression target '{raw.iloc[i]}' is not a number.",
                row=line_of(i),
                column=col,
                case_id=case_of(src.ids, i),
                fix="write a number, or leave the cell empty",
            )
        if values.notna().sum() < 2:
            raise DataError(
                f"Task '{info.name}' has fewer than two cases with a value.",
                column=col,
                fix="fill the target column",
            )
        return values.to_numpy(np.float32)

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        """The quartile of the value (-1: no value; all 0 below 8 values)."""
        v = pd.to_numeric(src.df[info.label[0]], errors="coerce")
        q = pd.qcut(v.rank(method="first"), 4, labels=False) if v.notna().sum() >= 8 else v * 0
        return q.fillna(-1).astype(int).astype(str).to_numpy()

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(y) == 0 or int(np.isfinite(y).sum()) < 2:
            no_training(info, "value")

    def head_output(self, info: TaskInfo, head: Any, raw: Any) -> np.ndarray:
        return raw.numpy().reshape(-1)

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from fusiondx.evaluation.regression import regression_metrics

        return regression_metrics(output, y)

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        cols: dict[str, Any] = {} if y is None else {f"{info.name}_true": y}
        return cols | {f"{info.name}_pred": np.asarray(output).reshape(-1)}

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.regression import regression_metrics

        t = info.name
        pred, true = (
            frame[f"{t}_pred"].to_numpy(np.float64),
            frame[f"{t}_true"].to_numpy(np.float64),
        )

        def metric(m: str) -> Scorer:
            return weighted(lambda w: regression_metrics(pred, true, w)[m], len(true))

        return {m: metric(m) for m in self.metrics}

    def estimators(
        self, family: str, seed: int, balanced: bool
    ) -> list[tuple[dict[str, Any], Any]]:
        """``linear``: ridge regression, alpha from a 4-point grid; ``trees``: histogram gradient
        boosting, 100 rounds at learning rate 0.1 with 7, 15 or 31 leaves."""
        if family == "linear":
            from sklearn.linear_model import Ridge

            return [({"alpha": a}, Ridge(alpha=a)) for a in (100.0, 10.0, 1.0, 0.1)]
        from sklearn.ensemble import HistGradientBoostingRegressor

        return [
            (
                {"max_leaf_nodes": leaves},
                HistGradientBoostingRegressor(
                    learning_rate=0.1,
                    max_leaf_nodes=leaves,
                    max_iter=100,
                    l2_regularization=1.0,
                    min_samples_leaf=10,
                    early_stopping=False,
                    random_state=seed,
                ),
            )
            for leaves in (7, 15, 31)
        ]

    def stacking(
        self, estimators: list[tuple[str, Any]], cv: Any
    ) -> list[tuple[dict[str, Any], Any]]:
        from sklearn.ensemble import StackingRegressor
        from sklearn.linear_model import Ridge

        return [({}, StackingRegressor(estimators, final_estimator=Ridge(alpha=1.0), cv=cv))]

    def example(self, n: int, rng: np.random.Generator) -> Example:
        value = np.round(rng.normal(8, 3, n), 2).astype(object)
        value[::7] = None  # not measured
        return Example(
            {"name": "wbc", "head": "regression", "label": "wbc"},
            pd.DataFrame({"wbc": value}),
            perfect=lambda t: np.nan_to_num(t).astype(np.float32),
            noise=lambda t, g: g.normal(8, 3, len(t)).astype(np.float32),
            bad=(4, "wbc", "high"),
        )
