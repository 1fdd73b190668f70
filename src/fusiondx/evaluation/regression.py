"""Regression tasks: MAE, RMSE and R^2 under case weights (see :mod:`.weights`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.evaluation.weights import case_weights, per_replicate, ratio


def regression_metrics(
    pred: np.ndarray, true: np.ndarray, w: np.ndarray | None = None
) -> dict[str, Any]:
    """Weighted MAE, RMSE and R^2 over cases with a target (NaN true = missing, left out).

    R^2 = 1 - SS_res / SS_tot around the weighted mean of the target; NaN when the target is
    constant on the (weighted) cases, where scikit-learn would force 0 or 1.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    ww = case_weights(w, t.size)
    ok = np.isfinite(p) & np.isfinite(t)
    err = np.where(ok, p - t, 0.0)
    # Centre the target first: SS_tot from weighted moments then loses no precision to a large
    # common offset.
    tc = np.where(ok, t - (t[ok].mean() if ok.any() else 0.0), 0.0)
    sw = ww @ ok.astype(np.float64)
    s1, s2 = ww @ tc, ww @ (tc * tc)
    mse = ratio(ww @ (err * err), sw)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = s2 - s1 * ratio(s1, sw)
        ss_res = mse * sw
        r2 = np.where(ss_tot > 1e-12 * s2, 1 - ss_res / ss_tot, np.nan)
    return {
        "mae": per_replicate(ratio(ww @ np.abs(err), sw), w),
        "rmse": per_replicate(np.sqrt(mse), w),
        "r2": per_replicate(r2, w),
    }
