"""The words and numbers of the report and the tables: metric names, formatted values and CIs,
the ranking of the entries and the metrics a table shows."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.registry import TASK_TYPES
from fusiondx.study.plots import num
from fusiondx.tasks import task_type

NAMES = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "f1": "F1",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "sensitivity": "Sensitivity",
    "balanced_accuracy": "Balanced accuracy",
    "iou": "IoU",
    "detection_rate": "Detection rate (IoU ≥ 0.5)",
    "center_error": "Centre error",
    "dice": "Dice",
    "dice_lesion": "Dice (lesion cases)",
    "iou_lesion": "IoU (lesion cases)",
    "bleu1": "BLEU-1",
    "bleu2": "BLEU-2",
    "bleu3": "BLEU-3",
    "bleu4": "BLEU-4",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "meteor": "METEOR",
    "c_index": "C-index",
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
}
SPLITS = {"val": "validation", "train": "training", "test": "test"}


def metric_name(m: str) -> str:
    """A metric's display name: 'auroc' -> 'AUROC'."""
    return NAMES.get(m, m.replace("_", " ").capitalize())


def fmt(x: Any, nd: int = 3) -> str:
    """A number with ``nd`` decimals; 'n/a' for a missing or NaN one."""
    v = num(x)
    return "n/a" if math.isnan(v) else f"{v:.{nd}f}"


def fmt_ci(d: Any, nd: int = 3, ci_nd: int = 2) -> str:
    """``0.912 [0.88, 0.94]``; 'n/a' for a missing or NaN mean."""
    d = d if isinstance(d, dict) else {}
    m, lo, hi = num(d.get("mean")), num(d.get("low")), num(d.get("high"))
    if math.isnan(m):
        return "n/a"
    ci = "" if math.isnan(lo) or math.isnan(hi) else f" [{lo:.{ci_nd}f}, {hi:.{ci_nd}f}]"
    return f"{m:.{nd}f}{ci}"


def fmt_count(x: Any, unit: str = "") -> str:
    """1234567 -> '1.2 M'; with unit 'FLOP': '35.1 MFLOP'."""
    v = num(x)
    if math.isnan(v):
        return "n/a"
    for scale, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.1f} {p}{unit}"
    return f"{v:.0f} {unit}".strip()


def fmt_p(p: Any, n_boot: Any = None) -> str:
    v, nb = num(p), num(n_boot)
    if math.isnan(v):
        return "p n/a"
    if v < 0.001:
        return "p < 0.001"
    if nb > 0 and v <= 1.0 / nb + 1e-12:  # at the resolution of the bootstrap
        return f"p ≤ {1.0 / nb:.2g}"
    return f"p = {v:.3f}" if v < 0.01 else f"p = {v:.2f}"


def stat(entry: dict[str, Any], metric: str) -> dict[str, float]:
    """An entry's test mean, low and high of ``metric`` (NaN where missing)."""
    d = (entry.get("test") or {}).get(metric) or {}
    return {k: num(d.get(k)) for k in ("mean", "low", "high")}


def ranked(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries best-first on the test primary metric (stable; NaN last)."""
    pm = (results.get("study") or {}).get("primary_metric", "auroc")
    ents = list(results.get("entries") or [])
    return sorted(
        ents,
        key=lambda e: (
            math.isnan(stat(e, pm)["mean"]),
            -(stat(e, pm)["mean"] if not math.isnan(stat(e, pm)["mean"]) else 0.0),
        ),
    )


def all_metrics(results: dict[str, Any]) -> list[str]:
    """The table's metrics, then every other test metric of any entry (the CSV's columns)."""
    seen = [m for e in results.get("entries") or [] for m in (e.get("test") or {})]
    return list(dict.fromkeys([*table_metrics(results), *seen]))


def table_metrics(results: dict[str, Any]) -> list[str]:
    """The metrics a table shows: the task type's, with the primary metric among them."""
    pm = (results.get("study") or {}).get("primary_metric", "auroc")
    name = (results.get("study") or {}).get("task_type") or "binary"  # none: classification
    table = task_type(name).table_metrics if name in TASK_TYPES else None
    if table is None:
        # Other tasks: their own metrics, primary first, in the order the head reports them.
        seen = [m for e in results.get("entries") or [] for m in (e.get("test") or {})]
        return list(dict.fromkeys([pm, *seen]))
    fixed = list(table)
    return fixed if pm in fixed else [*fixed, pm]


def selection(study: dict[str, Any]) -> str:
    """How the winner was chosen, in words: 'validation AUROC'."""
    sel = str(study.get("selection") or "")
    split, _, m = sel.partition("/")
    return f"{SPLITS.get(split, split)} {metric_name(m)}" if m else sel


def replicates(study: dict[str, Any]) -> str:
    """'3 seeds (0, 1, 2)' or '5 folds (out-of-fold predictions pooled)'."""
    if study.get("folds"):
        return f"{study['folds']} folds (out-of-fold predictions pooled)"
    seeds = study.get("seeds") or []
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def pooling(study: dict[str, Any]) -> str:
    """How replicates are combined, in words."""
    return "pooled over folds" if study.get("folds") else "mean over seeds"
