"""Split-conformal prediction sets and selective prediction (triage) for single-label tasks.

A prediction set holds every class whose non-conformity score is at most the calibration
quantile, so that on exchangeable data it contains the true class with probability at least
``coverage`` (Vovk et al., 2005; Angelopoulos & Bates, 2021, "A Gentle Introduction to
Conformal Prediction"). Scores, from (calibrated) class probabilities (N, K):

- ``lac`` (least ambiguous set-valued classifier; Sadinle et al., 2019): ``1 - p_class``;
- ``aps`` (adaptive prediction sets; Romano et al., 2020, without randomisation): the total
  probability of the classes at least as probable as this one.

The quantile is the ``ceil((n + 1) * coverage)``-th smallest of the n calibration scores (the
finite-sample correction; infinite, i.e. every class, when that exceeds n). ``mondrian`` takes
the quantile per true class (class-conditional coverage: each class is covered at the level,
not only on average). This is what crepes' ``ConformalClassifier`` computes with unsmoothed
p-values; the tests check the two agree on the same scores.

A case is referred to an expert when its set is not exactly one class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCORES = ("lac", "aps")


def class_probs(probs: Any, task_type: str) -> np.ndarray:
    """(N, K) class probabilities; a binary task's positive-class (N,) becomes (N, 2)."""
    p = np.asarray(probs, dtype=np.float64)
    if task_type == "binary":
        p = p.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    return p


def scores(probs: Any, score: str = "lac") -> np.ndarray:
    """Non-conformity score of every class for every case: (N, K)."""
    p = np.asarray(probs, dtype=np.float64)
    if score == "lac":
        return 1.0 - p
    if score == "aps":
        # Sum of the probabilities of the classes at least as probable as class k.
        return np.stack([(p * (p >= p[:, [k]])).sum(axis=1) for k in range(p.shape[1])], axis=1)
    raise ValueError(f"unknown conformal score {score!r}; expected one of {SCORES}")


def quantile(cal_scores: Any, coverage: float) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest calibration score (inf when beyond n)."""
    s = np.sort(np.asarray(cal_scores, dtype=np.float64).reshape(-1))
    k = math.ceil((len(s) + 1) * coverage - 1e-9)
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def fit_conformal(
    probs: Any, y: Any, coverage: float = 0.9, score: str = "lac", mondrian: bool = False
) -> dict[str, Any]:
    """Fit the set threshold(s) on calibration probabilities (N, K) and true classes (N,).

    Returns ``{"coverage", "score", "mondrian", "qhat": [one per class]}`` (all equal unless
    ``mondrian``) and the calibration size(s), JSON-ready (inf written as None by JSON writers).
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, got {coverage}")
    s = scores(probs, score)
    t = np.asarray(y).astype(int).reshape(-1)
    true = s[np.arange(len(t)), t]
    k = s.shape[1]
    if mondrian:
        qhat = [quantile(true[t == c], coverage) for c in range(k)]
        n = [int((t == c).sum()) for c in range(k)]
    else:
        qhat = [quantile(true, coverage)] * k
        n = [len(t)] * k
    return {"coverage": coverage, "score": score, "mondrian": mondrian, "qhat": qhat, "n_cal": n}


def predict_sets(probs: Any, fitted: dict[str, Any]) -> np.ndarray:
    """Prediction sets (N, K) of 0/1: class k is in when its score is at most its quantile."""
    q = np.asarray([math.inf if v is None else v for v in fitted["qhat"]], dtype=np.float64)
    return (scores(probs, fitted["score"]) <= q[None, :]).astype(np.int64)


def set_report(sets: Any, y: Any, classes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Empirical coverage and mean set size, overall and per true class, and the share of
    cases whose set is not one class (referred)."""
    s = np.asarray(sets).astype(bool)
    t = np.asarray(y).astype(int).reshape(-1)
    covered = s[np.arange(len(t)), t]
    size = s.sum(axis=1)
    per = {}
    for k, c in enumerate(classes):
        m = t == k
        per[c] = {
            "n": int(m.sum()),
            "coverage": float(covered[m].mean()) if m.any() else float("nan"),
            "mean_set_size": float(size[m].mean()) if m.any() else float("nan"),
        }
    return {
        "n": len(t),
        "coverage": float(covered.mean()) if len(t) else float("nan"),
        "mean_set_size": float(size.mean()) if len(t) else float("nan"),
        "referred": float((size != 1).mean()) if len(t) else float("nan"),
        "empty": float((size == 0).mean()) if len(t) else float("nan"),
        "per_class": per,
    }


def selective_curve(correct: Any, certainty: Any, kept: Any = None) -> dict[str, list[float]]:
    """Accuracy of the cases kept when the least certain are referred first.

    ``correct`` (N,) 0/1, ``certainty`` (N,) (e.g. the highest class probability); ``kept`` the
    shares of cases kept (default 1.0, 0.95, ..., 0.05). Ties in certainty are referred in case
    order, so the curve is deterministic.
    """
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    order = np.argsort(-np.asarray(certainty, dtype=np.float64).reshape(-1), kind="stable")
    shares = np.round(np.arange(1.0, 0.0, -0.05), 2) if kept is None else np.asarray(kept)
    n = len(c)
    acc, used = [], []
    cum = np.cumsum(c[order])
    for f in shares:
        m = max(1, int(round(f * n))) if n else 0
        used.append(float(m / n) if n else float("nan"))
        acc.append(float(cum[m - 1] / m) if m else float("nan"))
    return {"kept": used, "accuracy": acc}


__all__ = [
    "SCORES",
    "class_probs",
    "fit_conformal",
    "predict_sets",
    "quantile",
    "scores",
    "selective_curve",
    "set_report",
]
