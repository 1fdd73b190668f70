"""Fairness by subgroup of a predictions table: the glue between runs and
:mod:`fusiondx.evaluation.fairness`, used by ``evaluate`` and the study.

The subgroups are the ``group:<column>`` columns the run wrote (``fairness.columns``); the
targets, probabilities and predicted classes are the task's own columns, so the numbers use
whatever threshold wrote ``<task>_pred``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config.fairness import FairnessConfig
from fusiondx.data.groups import group_column
from fusiondx.evaluation.fairness import subgroup_metrics
from fusiondx.tasks import TaskInfo, task_type

METRICS = {
    "binary": ("auroc", "accuracy", "sensitivity", "specificity"),
    "multiclass": ("auroc", "accuracy", "recall"),
}


def frame_fairness(
    frames: Sequence[pd.DataFrame],
    info: TaskInfo,
    fairness: FairnessConfig,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Per ``fairness.columns`` column, the subgroup table of these predictions (one frame per
    seed, the same cases in the same order); None when fairness is off."""
    if not fairness.columns:
        return None
    out: dict[str, Any] = {
        "task": info.name,
        "type": info.type,
        "metrics": list(METRICS.get(info.type, ())),
        "min_size": fairness.min_size,
        "columns": {},
        "why": None,
    }
    tt = task_type(info)
    if info.type not in METRICS or not tt.class_indices:
        out["why"] = (
            f"subgroup metrics need a binary or multiclass task; '{info.name}' is {info.type}"
        )
        return out
    if info.type == "binary":
        out["positive"] = info.classes[1]
    first = frames[0]
    y = tt.frame_truth(info, first)
    probs = [tt.frame_probs(info, f) for f in frames]
    index = {c: k for k, c in enumerate(info.classes)}
    preds = [f[f"{info.name}_pred"].astype(str).map(index).to_numpy() for f in frames]
    for name in fairness.columns:
        col = group_column(name)
        if col not in first.columns:
            out["columns"][name] = {
                "why": f"the predictions have no '{col}' column (written by runs whose config "
                "lists it in fairness.columns); rerun or re-evaluate the run"
            }
            continue
        out["columns"][name] = subgroup_metrics(
            y,
            probs,
            preds,
            first[col].astype(str).to_numpy(),
            task_type=info.type,
            classes=info.classes,
            metrics=out["metrics"],
            min_size=fairness.min_size,
            n_boot=n_boot,
            seed=seed,
        )
    return out


def fairness_text(report: dict[str, Any] | None, metric: str | None = None) -> list[str]:
    """The fairness report as plain lines: one table per column (metric with its CI per
    subgroup, size, flags), then its largest gap and the fairlearn differences."""
    if not report:
        return []
    if report.get("why"):
        return [f"Fairness: {report['why']}"]
    metric = metric if metric in report["metrics"] else report["metrics"][0]
    lines = [
        f"Fairness by subgroup (task '{report['task']}', {metric} with 95% CI; subgroups under "
        f"{report['min_size']} cases flagged *):"
    ]
    for name, col in report["columns"].items():
        if col.get("why"):
            lines.append(f"  {name}: {col['why']}")
            continue
        lines.append(f"  {name}:")
        for r in col["groups"]:
            v = r["metrics"].get(metric)
            shown = _ci(v) if v else f"undefined ({r['undefined'].get(metric, '')})"
            sel = r.get("selection_rate")
            extra = "" if sel is None else f"  predicted positive {sel:.0%}"
            lines.append(
                f"    {r['group'] + (' *' if r['small'] else ''):<18} n={r['n']:<5} {shown}{extra}"
            )
        gap = col["gaps"].get(metric) or {}
        if gap.get("value") is not None:
            lines.append(
                f"    largest {metric} gap {gap['value']:.3f} ({gap['best']} vs {gap['worst']})"
            )
        eo, dp = col.get("equalized_odds_difference"), col.get("demographic_parity_difference")
        if eo or dp:
            lines.append(
                f"    equalised-odds difference {_num(eo)}, demographic-parity difference {_num(dp)}"
            )
        if col.get("fairlearn_note"):
            lines.append(f"    note: {col['fairlearn_note']}")
    return lines


def _ci(v: dict[str, float]) -> str:
    lo, hi = v.get("low", math.nan), v.get("high", math.nan)
    return f"{v['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(d: dict[str, Any] | None) -> str:
    return "n/a" if not d or d.get("value") is None else f"{d['value']:.3f}"


def group_values(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    """Each case's subgroup in column ``name`` of a predictions table (None if not written)."""
    col = group_column(name)
    return frame[col].astype(str).to_numpy() if col in frame.columns else None
