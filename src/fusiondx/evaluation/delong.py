"""DeLong et al. (1988) paired test of two AUROCs on the same cases (binary tasks), with the fast
algorithm of Sun & Xu (2014). The study reports it beside the paired bootstrap of
:mod:`fusiondx.evaluation.bootstrap`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps


def delong_test(y: Any, scores_a: Any, scores_b: Any) -> dict[str, float]:
    """DeLong et al. (1988) test of two correlated AUROCs on the same cases (binary tasks).

    Uses the O(N log N) midrank algorithm of Sun & Xu (2014): the structural components
    V10 (per positive: share of negatives scored lower, ties 1/2) and V01 (per negative: share of
    positives scored higher) come from the midranks of each score vector within the positives,
    within the negatives and over all cases. The variance of AUROC_a - AUROC_b is
    S10/m + S01/n with S10, S01 the 2x2 covariances of the components; z is the difference over
    its standard error and the p-value is two-sided (normal). Identical scores give z = 0, p = 1.
    Scores are used as given (float64), not rounded to float32.
    """
    yy = np.asarray(y)
    if yy.ndim == 2 and yy.shape[1] == 1:
        yy = yy[:, 0]
    if yy.ndim != 1 or not np.isin(yy, (0, 1)).all():
        raise ValueError(
            "delong_test needs binary targets: y of shape (N,) holding only 0/1 "
            f"(got shape {yy.shape} with values {np.unique(yy)[:10].tolist()}); for multiclass or "
            "multilabel tasks use paired_difference"
        )
    scores = []
    for s in (scores_a, scores_b):
        s = np.asarray(s, dtype=np.float64)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.shape != yy.shape:
            raise ValueError(f"scores must have shape {yy.shape} (one per case), got {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        scores.append(s)
    pos = yy == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(f"delong_test needs at least 2 positives and 2 negatives (got {m}, {n})")
    x = np.stack([s[pos] for s in scores])  # (2, m) positives
    z = np.stack([s[~pos] for s in scores])  # (2, n) negatives
    tx = sps.rankdata(x, axis=1)
    tz = sps.rankdata(z, axis=1)
    t_all = sps.rankdata(np.concatenate([x, z], axis=1), axis=1)
    auc = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (t_all[:, :m] - tx) / n
    v01 = 1.0 - (t_all[:, m:] - tz) / m
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    if diff == 0:
        z_stat, p = 0.0, 1.0
    elif var <= 0:
        z_stat, p = math.copysign(math.inf, diff), 0.0
    else:
        z_stat = diff / math.sqrt(var)
        p = float(2 * sps.norm.sf(abs(z_stat)))
    return {
        "auroc_a": float(auc[0]),
        "auroc_b": float(auc[1]),
        "difference": diff,
        "z": float(z_stat),
        "p_value": p,
    }


__all__ = ["delong_test"]
