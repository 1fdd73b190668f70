"""Metrics by subgroup (sex, age band, site, ...): bootstrap CIs, the largest gap, and
fairlearn's equalised-odds and demographic-parity differences.

Every subgroup is scored with the study's own metrics and bootstrap
(:mod:`fusiondx.evaluation.classification`, :func:`~fusiondx.evaluation.bootstrap.pooled_ci`,
resampling within the subgroup's classes), so a subgroup's interval reads like the study
table's. A subgroup with fewer than ``min_size`` cases is shown but flagged ``small`` and left
out of the gaps and of the fairlearn differences, which a handful of cases would dominate. A
subgroup holding one class only has no AUROC (nor sensitivity or specificity for lack of one
class): the value is ``None`` with the reason, and the subgroup is left out of the
equalised-odds difference, whose true- and false-positive rates it cannot define.

The equalised-odds and demographic-parity differences use the predicted classes as written in
the predictions table (binary: the positive class; multiclass: each class one-vs-rest, the
largest difference reported with its class), computed by fairlearn's
``equalized_odds_difference`` / ``demographic_parity_difference``; the per-subgroup selection,
true- and false-positive rates come from its ``MetricFrame``. With several seeds each is
computed per seed and averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusiondx.evaluation.bootstrap import pooled_ci
from fusiondx.evaluation.classification import scorer

# Metrics that need both classes in a subgroup (binary), and what each needs.
_NEEDS_BOTH = {"auroc", "auprc", "balanced_accuracy"}
_NEEDS_POS = {"sensitivity", "recall"}
_NEEDS_NEG = {"specificity"}


def subgroup_metrics(
    y: np.ndarray,
    probs: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    groups: np.ndarray,
    *,
    task_type: str,
    classes: Sequence[str],
    metrics: Sequence[str],
    min_size: int,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One subgroup column's table: per subgroup its size, metrics with CIs, rates; the gaps.

    Args:
        y: class indices (N,).
        probs: per seed, the probabilities (binary (N,), multiclass (N, K)).
        preds: per seed, the predicted class indices (N,) (what the predictions table says).
        groups: each case's subgroup label (N,).
        task_type: ``binary`` or ``multiclass``.
        classes: class names (binary: the second is the positive class).
        metrics: the metric names to report (from the classification metrics).
        min_size: subgroups with fewer cases are flagged and left out of gaps and differences.
        n_boot, seed: the bootstrap (same seed, same replicates, as the study).

    Returns:
        ``{"groups": [...], "gaps": {metric: ...}, "equalized_odds_difference",
        "demographic_parity_difference", "fairlearn": {...}, "min_size"}``.
    """
    if task_type not in ("binary", "multiclass"):
        raise ValueError(f"subgroup metrics need a binary or multiclass task, got {task_type}")
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups).astype(str)
    names = sorted(set(groups.tolist()), key=_group_order)
    rows = []
    for g in names:
        idx = np.flatnonzero(groups == g)
        rows.append(
            _group_row(g, idx, y, probs, preds, task_type, classes, metrics, min_size, n_boot, seed)
        )
    eligible = [r["group"] for r in rows if not r["small"]]
    gaps = {m: _gap(rows, m) for m in metrics}
    fl = _fairlearn(y, preds, groups, eligible, rows, task_type, classes)
    return {
        "min_size": int(min_size),
        "groups": rows,
        "gaps": gaps,
        **fl,
    }


def _group_order(label: str) -> tuple[int, float, str]:
    """Bands in numeric order (``<40``, ``40-64``, ``>=65``), ``missing`` last, others by name."""
    if label == "missing":
        return (2, 0.0, label)
    digits = "".join(c if c.isdigit() or c == "." else " " for c in label).split()
    if digits and label[0] in "<>0123456789":
        first = float(digits[0])
        return (0, first - (0.5 if label.startswith("<") else 0.0), label)
    return (1, 0.0, label)


def _group_row(
    g: str,
    idx: np.ndarray,
    y: np.ndarray,
    probs: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    task_type: str,
    classes: Sequence[str],
    metrics: Sequence[str],
    min_size: int,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    yg = y[idx]
    present = sorted(set(yg.tolist()))
    counts = {classes[k]: int((yg == k).sum()) for k in range(len(classes))}
    row: dict[str, Any] = {
        "group": g,
        "n": int(idx.size),
        "classes": counts,
        "small": bool(idx.size < min_size),
        "metrics": {},
        "undefined": {},
    }
    one_class = len(present) < 2
    missing = [classes[k] for k in range(len(classes)) if counts[classes[k]] == 0]
    for m in metrics:
        why = _undefined(m, task_type, one_class, missing, classes, counts)
        if why:
            row["metrics"][m] = None
            row["undefined"][m] = why
            continue
        scorers = [scorer(m, yg, np.asarray(p)[idx], task_type) for p in probs]
        ci = pooled_ci(scorers, idx.size, yg, n_boot=n_boot, seed=seed)
        if not np.isfinite(ci["mean"]):
            row["metrics"][m] = None
            row["undefined"][m] = "undefined on this subgroup's cases"
            continue
        row["metrics"][m] = {k: ci[k] for k in ("mean", "low", "high")}
    pos = len(classes) - 1 if task_type == "binary" else None
    if pos is not None:
        sel = [float(np.mean(np.asarray(p)[idx] == pos)) for p in preds]
        row["selection_rate"] = float(np.mean(sel))
    return row


def _undefined(
    m: str,
    task_type: str,
    one_class: bool,
    missing: list[str],
    classes: Sequence[str],
    counts: dict[str, int],
) -> str | None:
    """Why metric ``m`` has no value on a subgroup with these class counts (None: it has one)."""
    only = ", ".join(f"{c}" for c, n in counts.items() if n)
    if m in _NEEDS_BOTH and one_class:
        return f"only one class ({only}) among its cases, so {m} is undefined"
    if task_type != "binary":
        return None
    if m in _NEEDS_POS and classes[1] in missing:
        return f"no {classes[1]} case, so {m} is undefined"
    if m in _NEEDS_NEG and classes[0] in missing:
        return f"no {classes[0]} case, so {m} is undefined"
    return None


def _gap(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Best minus worst subgroup on ``metric``, over subgroups of at least min_size with a value."""
    vals = [
        (r["metrics"][metric]["mean"], r["group"])
        for r in rows
        if not r["small"] and r["metrics"].get(metric) is not None
    ]
    if len(vals) < 2:
        return {
            "value": None,
            "why": "fewer than two subgroups of at least min_size cases with a value",
        }
    hi, lo = max(vals), min(vals)
    return {"value": float(hi[0] - lo[0]), "best": hi[1], "worst": lo[1]}


def _fairlearn(
    y: np.ndarray,
    preds: Sequence[np.ndarray],
    groups: np.ndarray,
    eligible: list[str],
    rows: list[dict[str, Any]],
    task_type: str,
    classes: Sequence[str],
) -> dict[str, Any]:
    """fairlearn's equalised-odds and demographic-parity differences and its per-group rates."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    both = {r["group"] for r in rows if sum(v > 0 for v in r["classes"].values()) >= 2}
    keep_dp = np.isin(groups, eligible)
    keep_eo = np.isin(groups, [g for g in eligible if g in both])
    targets = [len(classes) - 1] if task_type == "binary" else list(range(len(classes)))
    out: dict[str, Any] = {
        "equalized_odds_difference": None,
        "demographic_parity_difference": None,
        "fairlearn_by_group": {},
        "fairlearn_note": None,
    }
    if len(set(groups[keep_dp].tolist())) < 2:
        out["fairlearn_note"] = "fewer than two subgroups of at least min_size cases"
        return out
    dp, eo, dp_class, eo_class = [], [], [], []
    for k in targets:
        yk = (y == k).astype(int)
        d = [
            demographic_parity_difference(
                yk[keep_dp],
                (np.asarray(p) == k).astype(int)[keep_dp],
                sensitive_features=groups[keep_dp],
            )
            for p in preds
        ]
        dp.append(float(np.mean(d)))
        dp_class.append(classes[k])
        if len(set(groups[keep_eo].tolist())) >= 2:
            e = [
                equalized_odds_difference(
                    yk[keep_eo],
                    (np.asarray(p) == k).astype(int)[keep_eo],
                    sensitive_features=groups[keep_eo],
                )
                for p in preds
            ]
            eo.append(float(np.mean(e)))
            eo_class.append(classes[k])
    j = int(np.argmax(dp))
    out["demographic_parity_difference"] = {"value": dp[j], "class": dp_class[j]}
    if eo:
        j = int(np.argmax(eo))
        out["equalized_odds_difference"] = {"value": eo[j], "class": eo_class[j]}
    else:
        out["fairlearn_note"] = "fewer than two subgroups with both classes and min_size cases"
    if task_type == "binary":
        pos = targets[0]
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=(y == pos).astype(int)[keep_dp],
            y_pred=(np.asarray(preds[0]) == pos).astype(int)[keep_dp],
            sensitive_features=groups[keep_dp],
        )
        out["fairlearn_by_group"] = {
            str(g): {c: float(v) for c, v in r.items()} for g, r in frame.by_group.iterrows()
        }
    return out


__all__ = ["subgroup_metrics"]
