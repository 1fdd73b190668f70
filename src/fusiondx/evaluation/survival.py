"""Survival tasks: Harrell's concordance index, as scikit-survival computes it.

The point estimate is :func:`sksurv.metrics.concordance_index_censored`. Bootstrap replicates
(case weights ``w``, see :mod:`.weights`) use a vectorised count of the same comparable,
concordant and tied pairs, tested to equal scikit-survival on every replicate's resampled cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.evaluation.weights import BLOCK_ELEMENTS, case_weights, per_replicate, ratio

# Risks closer than this are tied (count 1/2): scikit-survival's default, passed to it explicitly.
TIED_TOL = 1e-8


def concordance_index(
    risk: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray | None = None
) -> float | np.ndarray:
    """Harrell's C: the share of comparable pairs whose higher-risk case has the event first.

    A pair (i, j) is comparable when i had the event and time_i < time_j, or the times tie and
    only i had the event (the event counts as earlier); tied times with two events are not
    comparable. Risks within :data:`TIED_TOL` of each other count 1/2. These are
    scikit-survival's conventions, and without weights the value is its
    ``concordance_index_censored``. With weights a pair counts w_i * w_j, which equals repeating
    cases (a case's copies are tied pairs, never comparable). Cases with a non-finite risk, time
    or event are left out. NaN when no pair is comparable.
    """
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event, dtype=np.float64).reshape(-1)
    if not risk.size == time.size == event.size:
        raise ValueError("risk, time and event must have the same length")
    ww = case_weights(w, risk.size)
    ok = np.isfinite(risk) & np.isfinite(time) & np.isfinite(event)
    risk, time, ev, ww = risk[ok], time[ok], event[ok] != 0, ww[:, ok]
    if w is None:
        return _sksurv_c(risk, time, ev)
    n, b = risk.size, ww.shape[0]
    num, den = np.zeros(b), np.zeros(b)
    rows = np.flatnonzero(ev)  # only event cases start a comparable pair
    # The pair matrices are built a block of rows at a time and contracted with all B weight
    # rows at once: sum_ij w_bi M_ij w_bj = sum_i w_bi (M w_b^T)_i, one matmul per block.
    step = max(1, BLOCK_ELEMENTS // max(n, b, 1))
    wt = ww.T
    for s in range(0, rows.size, step):
        i = rows[s : s + step]
        ti, tj = time[i, None], time[None, :]
        comp = (ti < tj) | ((ti == tj) & ~ev[None, :])
        tied = np.abs(risk[i, None] - risk[None, :]) <= TIED_TOL
        score = comp * (((risk[i, None] > risk[None, :]) & ~tied) + 0.5 * tied)
        both = np.concatenate([score, comp.astype(np.float64)]) @ wt  # (2 * block, B)
        wi = wt[i]
        num += (wi * both[: i.size]).sum(axis=0)
        den += (wi * both[i.size :]).sum(axis=0)
    return per_replicate(ratio(num, den), w)


def _sksurv_c(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    from sksurv.exceptions import NoComparablePairException
    from sksurv.metrics import concordance_index_censored

    if risk.size < 2 or not event.any():
        return float("nan")  # scikit-survival raises here: no comparable pair
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 pairs: NaN, said quietly
            return float(concordance_index_censored(event, time, risk, tied_tol=TIED_TOL)[0])
    except NoComparablePairException:
        return float("nan")


def survival_metrics(
    risk: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray | None = None
) -> dict[str, Any]:
    """``c_index``: Harrell's concordance of risk scores (higher = earlier event)."""
    return {"c_index": concordance_index(risk, time, event, w)}
