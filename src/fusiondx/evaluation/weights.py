"""Case weights: how every task metric gets cheap bootstrap intervals.

Every metric of the box, mask, text, survival and regression tasks is computed from per-case data
(a box IoU, a Dice score, n-gram counts, a pair of survival times...) and an optional matrix of
case weights ``w`` of shape (B, N): ``w[b, i]`` is how many times case ``i`` appears in bootstrap
replicate ``b`` (integer counts stored as float; :func:`weights_from_indices` turns resampled
indices into such a matrix). A replicate is then a weighted sum over the same per-case arrays, so
B replicates cost one matrix product instead of B recomputations from raw predictions, and nothing
of size B x N x (case data) is ever built. With ``w=None`` a metric is computed once on all cases
(as ``w = ones((1, N))``) and returned as a plain float; with ``w`` given it is an array (B,).
Weighting a case by an integer ``k`` gives exactly the metric of the set where that case is
repeated ``k`` times, also for the non-additive metrics (corpus BLEU and METEOR from summed
statistics, Harrell's C from weighted pairs, R^2 from weighted moments).

A metric that is undefined on the given cases (no case with a lesion, no comparable pair, a
constant target) is NaN, never a misleading number. Per-case values are NaN where a case has no
answer (no true box, an ignored mask, no reference text); such cases drop out of every mean.
"""

from __future__ import annotations

import numpy as np

# Cap on the elements of the temporaries built per block (pair-matrix rows, mask chunks), so that
# memory stays bounded (~ tens of MB) whatever N and B are.
BLOCK_ELEMENTS = 4_000_000


def weights_from_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """Bootstrap indices (B, N') into cases 0..n-1 -> case counts (B, n) float64."""
    idx = np.asarray(idx)
    if idx.ndim != 2:
        raise ValueError(f"indices must be (B, N), got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n})")
    b = idx.shape[0]
    # One bincount over the whole matrix: row r's indices are shifted into their own range r*n.
    flat = (idx.astype(np.int64) + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def case_weights(w: np.ndarray | None, n: int) -> np.ndarray:
    """``w`` checked as a (B, n) float matrix; None -> one replicate of every case, ones((1, n))."""
    if w is None:
        return np.ones((1, n))
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must be (B, {n}), got shape {w.shape}")
    return w


def per_replicate(x: np.ndarray, w: np.ndarray | None) -> float | np.ndarray:
    """A metric's (B,) values as the caller asked: a float when no weights were given."""
    return float(x[0]) if w is None else x


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, NaN elsewhere (nothing to average over)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_mean(values: np.ndarray, w: np.ndarray | None = None) -> float | np.ndarray:
    """Mean of per-case values (N,) over defined (non-NaN) cases, weighted; NaN if none."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    ww = case_weights(w, v.size)
    defined = np.isfinite(v)
    return per_replicate(ratio(ww @ np.where(defined, v, 0.0), ww @ defined.astype(np.float64)), w)
