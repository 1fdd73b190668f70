"""Choosing a binary decision threshold on validation data.

A case is called positive when its probability is **above** the threshold. Candidate thresholds
lie halfway between consecutive distinct validation scores (and halfway between the highest
score and 1, the lowest and 0), so no validation case sits on one and ``p > t`` and ``p >= t``
decide alike. Rules:

- ``youden``: maximise Youden's J = sensitivity + specificity - 1 (the ROC point farthest
  above the diagonal);
- ``f1``: maximise the F1 score of the positive class;
- ``{"sensitivity": s}``: the highest threshold whose validation sensitivity is at least ``s``;
- a number: that threshold, as given (0.5 is what FusionDx used before).

Ties between candidates are broken towards the higher threshold (fewer positive calls), so the
choice is deterministic. Multilabel tasks get one threshold per label by the same rule;
multiclass tasks predict the most probable class (argmax) and have no threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RULES = ("youden", "f1", "sensitivity", "fixed")


def _candidates(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (descending) and the true/false positives each calls."""
    s = np.unique(p)[::-1]  # distinct scores, highest first
    upper = np.concatenate([[1.0 if s.size == 0 else max(1.0, s[0])], s])
    lower = np.concatenate([s, [0.0 if s.size == 0 else min(0.0, s[-1])]])
    thr = (upper + lower) / 2  # thr[i]: the i highest distinct scores are called positive
    # Group cases by their distinct score (rank in s), count positives/negatives per group.
    rank = np.searchsorted(-s, -p)
    pos = np.bincount(rank, weights=y, minlength=s.size)
    neg = np.bincount(rank, weights=1 - y, minlength=s.size)
    tp = np.concatenate([[0.0], np.cumsum(pos)])
    fp = np.concatenate([[0.0], np.cumsum(neg)])
    return thr, tp, fp


def choose_threshold(p: Any, y: Any, rule: str | float | dict[str, float]) -> dict[str, Any]:
    """The threshold ``rule`` picks on validation probabilities ``p`` (N,) and truths ``y`` (N,).

    Returns ``{"value", "rule", "target"?, "sensitivity", "specificity"}`` (validation rates at
    the chosen value). Without both classes in ``y`` a rule cannot be applied: 0.5 is kept and
    ``rule`` says why.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    y = (np.asarray(y).reshape(-1) > 0.5).astype(np.float64)
    target = None
    if isinstance(rule, dict):
        ((name, target),) = rule.items()
    elif isinstance(rule, (int, float)) and not isinstance(rule, bool):
        name, fixed = "fixed", float(rule)
    else:
        name = str(rule)
    if name not in RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {RULES} or a number")
    n_pos, n_neg = y.sum(), (1 - y).sum()
    if name == "fixed":
        value = fixed
    elif n_pos == 0 or n_neg == 0:
        name, value = "fixed (validation holds one class)", 0.5
    else:
        thr, tp, fp = _candidates(p, y)
        sens, spec = tp / n_pos, 1 - fp / n_neg
        if name == "youden":
            score = sens + spec - 1
        elif name == "f1":
            score = 2 * tp / np.maximum(2 * tp + fp + (n_pos - tp), 1e-12)
        else:
            ok = sens >= float(target) - 1e-12  # type: ignore[arg-type]
            score = np.where(ok, 1.0, -np.inf)
        # argmax takes the first maximum: the highest threshold among ties.
        value = float(thr[int(np.argmax(score))])
    called = p > value
    out: dict[str, Any] = {
        "value": value,
        "rule": name,
        "sensitivity": float(called[y == 1].mean()) if n_pos else float("nan"),
        "specificity": float((~called[y == 0]).mean()) if n_neg else float("nan"),
    }
    if target is not None:
        out["target"] = float(target)
    return out


def choose_thresholds(
    probs: Any, y: Any, task_type: str, rule: str | float | dict[str, float]
) -> list[dict[str, Any]] | None:
    """One threshold for a binary task, one per label for multilabel, None for multiclass."""
    if task_type == "multiclass":
        return None
    p, t = np.asarray(probs, dtype=np.float64), np.asarray(y)
    if task_type == "binary":
        return [choose_threshold(p.reshape(-1), t.reshape(-1), rule)]
    return [choose_threshold(p[:, k], t[:, k], rule) for k in range(p.shape[1])]


def predict_classes(probs: Any, task_type: str, thresholds: Any = None) -> np.ndarray:
    """Predicted class indices (binary, multiclass: (N,)) or 0/1 labels (multilabel: (N, K)):
    above the threshold(s) (default 0.5), argmax for multiclass."""
    p = np.asarray(probs, dtype=np.float64)
    if task_type == "multiclass":
        return p.argmax(axis=1)
    thr = np.asarray(0.5 if thresholds is None else thresholds, dtype=np.float64)
    if task_type == "binary":
        return (p.reshape(-1) > thr.reshape(-1)[0]).astype(np.int64)
    return (p > thr.reshape(1, -1)).astype(np.int64)


__all__ = ["RULES", "choose_threshold", "choose_thresholds", "predict_classes"]
