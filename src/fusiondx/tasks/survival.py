"""Survival: time to an event with censoring.

Label ``[time column, event column]``: time > 0 (any unit), event 1 (observed) or 0 (censored).
Targets: float32 (N, 2), time and event. ``predictions.csv``: ``t_time``, ``t_event``, ``t_risk``
(higher = event expected sooner).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusiondx.errors import ConfigError, DataError, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import (
    Example,
    LabelSource,
    Scorer,
    TaskInfo,
    TaskType,
    label_columns,
    no_training,
    weighted,
)

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig

_BINS = 10  # discrete-time hazard bins, at quantiles of the training event times


@register_task_type("survival")
class Survival(TaskType):
    """(time, event) per case; the metric is Harrell's concordance index of the risk scores."""

    heads = ("survival",)
    metrics = ("c_index",)
    estimator_labels = {"linear": "Cox model", "trees": "Cox model"}
    dense_features = True
    no_stacking = "scikit-survival has no cross-fitted stacking"

    def infer(self, task: TaskConfig, df: pd.DataFrame, cfg: Config | None) -> TaskInfo:
        cols = label_columns(task)
        if len(cols) != 2:
            shown = "[time column, event column]"
            raise ConfigError(
                f"Task '{task.name}' ({task.head}) takes {shown} as label, got {list(cols)}.",
                fix=f"set tasks[{task.name}].label to {shown}",
            )
        return TaskInfo(task.name, self.name, (), cols)

    def fit(
        self, info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: TaskConfig
    ) -> TaskInfo:
        time, event = _columns(info, df, pd.Series(np.arange(len(df)).astype(str)))
        t = time[train & (event > 0)]
        edges: Any = np.unique(np.quantile(t, np.linspace(0, 1, _BINS + 1)[1:-1])) if len(t) else []
        return replace(info, state={"bin_edges": [float(e) for e in edges]})

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        assert src.ids is not None
        return np.stack(_columns(info, src.df, src.ids), axis=1).astype(np.float32)

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        return src.df[info.label[1]].astype(str).str.strip().to_numpy().astype(str)

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        return y[:, 1].astype(int).astype(str)

    def stratum_names(self, info: TaskInfo) -> dict[str, str] | None:
        return {"1": "with an event", "0": "censored"}

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(y) == 0 or not bool((y[:, 1] > 0).any()):
            no_training(info, "observed event")

    def head_output(self, info: TaskInfo, head: Any, raw: Any) -> np.ndarray:
        return head.risk(raw).numpy()

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from fusiondx.evaluation.survival import survival_metrics

        return survival_metrics(output, y[:, 0], y[:, 1])

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        t = info.name
        cols: dict[str, Any] = {}
        if y is not None:
            cols[f"{t}_time"], cols[f"{t}_event"] = y[:, 0], y[:, 1].astype(int)
        return cols | {f"{t}_risk": output}

    def output_columns(self, info: TaskInfo, frame: pd.DataFrame) -> list[str]:
        return [f"{info.name}_risk"]

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.survival import concordance_index

        t = info.name
        risk = frame[f"{t}_risk"].to_numpy(np.float64)
        time, event = (
            frame[f"{t}_time"].to_numpy(np.float64),
            frame[f"{t}_event"].to_numpy(np.float64),
        )
        return {"c_index": weighted(lambda w: concordance_index(risk, time, event, w), len(risk))}

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        return frame[f"{info.name}_event"].to_numpy().astype(int)  # keep the event/censored mix

    def estimators(
        self, family: str, seed: int, balanced: bool
    ) -> list[tuple[dict[str, Any], Any]]:
        """A ridge-penalised Cox model for both families (scikit-survival's boosted survival trees
        take minutes where the rest takes seconds)."""
        from sksurv.linear_model import CoxPHSurvivalAnalysis

        return [
            ({"alpha": a}, CoxPHSurvivalAnalysis(alpha=a, n_iter=200))
            for a in (100.0, 10.0, 1.0, 0.1)
        ]

    def fit_target(self, y: np.ndarray) -> Any:
        from sksurv.util import Surv

        return Surv.from_arrays(event=np.asarray(y)[:, 1] > 0, time=np.asarray(y)[:, 0])

    def example(self, n: int, rng: np.random.Generator) -> Example:
        frame = pd.DataFrame(
            {
                "months": np.round(rng.uniform(1, 60, n), 1),
                "died": rng.permutation(np.arange(n) % 2),
            }
        )
        return Example(
            {"name": "outcome", "head": "survival", "label": ["months", "died"]},
            frame,
            perfect=lambda t: (-t[:, 0]).astype(np.float32),  # sooner event, higher risk
            noise=lambda t, g: g.normal(size=len(t)).astype(np.float32),
            bad=(6, "months", "-2"),
        )


def _columns(info: TaskInfo, df: pd.DataFrame, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    tcol, ecol = info.label
    time = pd.to_numeric(df[tcol], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(time) | (time <= 0))
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"The survival time '{df[tcol].iloc[i]}' is not a positive number "
            f"({len(bad)} case(s) in all).",
            row=line_of(i),
            column=tcol,
            case_id=str(ids.iloc[i]),
            fix="give the time to event or censoring, > 0, in one unit",
        )
    ev = (
        df[ecol]
        .astype(str)
        .str.strip()
        .str.lower()
        .map(
            {
                "1": 1.0,
                "1.0": 1.0,
                "true": 1.0,
                "yes": 1.0,
                "0": 0.0,
                "0.0": 0.0,
                "false": 0.0,
                "no": 0.0,
            }
        )
    )
    bad = np.flatnonzero(ev.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"The event indicator '{df[ecol].iloc[i]}' is not 0 or 1.",
            row=line_of(i),
            column=ecol,
            case_id=str(ids.iloc[i]),
            fix="write 1 (event observed) or 0 (censored)",
        )
    return time, ev.to_numpy(np.float64)
