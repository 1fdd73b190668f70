"""Confidence intervals and paired tests for models compared on the same test cases, any metric.

Every model of a study is scored on the SAME test cases and trained with several seeds, so
the uncertainty that matters is the one from the finite test set, and comparisons are paired.
A metric comes as one :data:`Scorer` per seed, a function of bootstrap indices computed for all
replicates at once (classification: :func:`fusiondx.evaluation.classification.scorer`; other
task types: their ``case_scores``, built on :mod:`fusiondx.evaluation.weights`), so 1000
replicates of every seed cost about one matrix product rather than 1000 re-scorings.

* ``pooled_ci``: a percentile bootstrap over test cases of the seed-averaged metric. Each
  replicate resamples the cases once and scores every seed on those same cases, so the interval
  reflects test-set sampling around the mean model, not the spread between seeds (which is
  reported separately as ``per_seed``).
* ``paired_difference``: the same bootstrap for ``metric(a) - metric(b)``, resampling the cases
  once per replicate for both models (paired), with a two-sided bootstrap p-value.

Pass the same bootstrap ``seed`` for every model: the replicates are then the same resampled
case sets for all of them, so intervals are paired across models as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Scorer = Callable[[np.ndarray | None], Any]
"""A metric as a function of bootstrap indices: ``(B, N)`` int indices -> the metric on each
resampled case set ``(B,)``; ``None`` -> the metric on all cases once, a float."""


def bootstrap_indices(
    n_cases: int, n_boot: int, seed: int, strata: np.ndarray | None = None
) -> np.ndarray:
    """Case indices of ``n_boot`` bootstrap replicates, (n_boot, n_cases) int64.

    With ``strata`` (one label per case, e.g. the class for binary/multiclass tasks) each stratum
    is resampled within itself: column j of every replicate holds a case of the same stratum as
    case j, so class counts are those of the test set and every replicate keeps every class
    (which keeps AUROC defined). The result depends only on (n_cases, n_boot, seed, strata), so
    the same seed gives the same replicates for every model.
    """
    if n_cases < 1 or n_boot < 1:
        raise ValueError("n_cases and n_boot must be >= 1")
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n_cases, size=(n_boot, n_cases), dtype=np.int64)
    strata = np.asarray(strata)
    if strata.shape != (n_cases,):
        raise ValueError(
            f"strata must be one label per case, shape ({n_cases},), got {strata.shape}"
        )
    idx = np.empty((n_boot, n_cases), dtype=np.int64)
    _, group = np.unique(strata, return_inverse=True)
    for g in range(group.max() + 1):
        members = np.flatnonzero(group == g)
        idx[:, members] = members[rng.integers(0, members.size, size=(n_boot, members.size))]
    return idx


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_p_value(d: np.ndarray) -> float:
    """Two-sided bootstrap p-value of replicate differences ``d``: ``2 min(P(d <= 0), P(d >= 0))``,
    floored at 1 / (defined replicates) and capped at 1; NaN if no replicate is defined."""
    finite = d[np.isfinite(d)]
    if finite.size == 0:
        return math.nan
    p = 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))
    return float(min(1.0, max(p, 1.0 / finite.size)))


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _check_scorers(scorers: Sequence[Scorer], what: str) -> None:
    if not scorers:
        raise ValueError(f"need the scorer of at least one seed{what}")


def _replicate_mean(scorers: Sequence[Scorer], idx: np.ndarray) -> np.ndarray:
    """The metric of every replicate averaged over seeds: (n_boot,). NaN if any seed is NaN
    (undefinedness comes from the cases, not from the seeds)."""
    return np.mean([np.asarray(s(idx), dtype=np.float64) for s in scorers], axis=0)


def pooled_ci(
    scorers: Sequence[Scorer],
    n: int,
    strata: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Seed-averaged metric with a percentile bootstrap CI over the ``n`` test cases.

    ``scorers`` holds the metric of each seed. Returns ``{"mean", "low", "high", "per_seed",
    "n_boot"}``: ``mean`` is the mean over seeds of the metric on all cases, ``per_seed`` those
    per-seed values; each replicate resamples the cases once (within ``strata`` if given, see
    ``bootstrap_indices``), scores every seed on them and averages over seeds, and
    ``low``/``high`` are the ``alpha/2`` and ``1 - alpha/2`` percentiles of those replicate means
    (replicates where the metric is undefined are dropped; NaN if all are).
    """
    _check_alpha(alpha)
    _check_scorers(scorers, "")
    full = np.array([float(s(None)) for s in scorers])
    idx = bootstrap_indices(n, n_boot, seed, strata)
    low, high = _percentiles(_replicate_mean(scorers, idx), alpha)
    return {
        "mean": float(np.mean(full)),
        "low": low,
        "high": high,
        "per_seed": [float(v) for v in full],
        "n_boot": int(n_boot),
    }


def paired_difference(
    a: Sequence[Scorer],
    b: Sequence[Scorer],
    n: int,
    strata: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` over the ``n`` test cases, each model
    averaged over its own seeds (``a`` and ``b`` may have different numbers of seeds).

    Both models are scored on the same resampled cases in every replicate, so case difficulty
    cancels out of the difference. Returns ``{"difference", "low", "high", "p_value", "n_boot"}``:
    ``difference`` on all cases, the percentile CI of the replicate differences, and the two-sided
    bootstrap p-value ``2 * min(P(d <= 0), P(d >= 0))`` over the replicates d (capped at 1), i.e.
    the smallest alpha whose percentile interval excludes 0. Because it is estimated from a finite
    number of replicates it cannot resolve values below 1 / (number of defined replicates), so it
    is floored there: "p = 0.001" with 1000 replicates means "p <= 0.001", never an exact 0. A
    model compared with itself gives d == 0 everywhere and p = 1.
    """
    _check_alpha(alpha)
    _check_scorers(a, " for a")
    _check_scorers(b, " for b")
    full = np.mean([float(s(None)) for s in a]) - np.mean([float(s(None)) for s in b])
    idx = bootstrap_indices(n, n_boot, seed, strata)
    d = _replicate_mean(a, idx) - _replicate_mean(b, idx)
    low, high = _percentiles(d, alpha)
    return {
        "difference": float(full),
        "low": low,
        "high": high,
        "p_value": bootstrap_p_value(d),
        "n_boot": int(n_boot),
    }


__all__ = ["Scorer", "bootstrap_indices", "bootstrap_p_value", "paired_difference", "pooled_ci"]
