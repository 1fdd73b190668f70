"""Study statistics of any task type, read back from the predictions tables.

Each model's test predictions (one table per seed) become per-metric scorers once, from its task
type (:meth:`fusiondx.tasks.TaskType.case_scores`): IoU per case, Dice per case, BLEU n-gram
counts, risks, values, class probabilities. A scorer is a function of bootstrap indices, computed
for all replicates at once (case weights: see :mod:`fusiondx.evaluation.weights`; class
metrics: :mod:`fusiondx.evaluation.stats`), so 1000 replicates of every seed cost about one
matrix product rather than 1000 re-scorings. CIs and paired differences follow
:mod:`fusiondx.evaluation.stats`: the replicates resample the test cases once for all seeds and
models, the seed-averaged metric is bootstrapped, and the p-value of a difference is the two-sided
bootstrap one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusiondx.evaluation.stats import _percentiles, bootstrap_indices, bootstrap_p_value
from fusiondx.tasks import Scorer


def pooled_ci(
    name: str,
    per_seed: Sequence[dict[str, Scorer]],
    n: int,
    groups: np.ndarray | None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Seed-averaged metric with a percentile bootstrap CI over the test cases: ``{"mean",
    "low", "high", "per_seed", "n_boot"}`` (replicates where the metric is undefined are dropped)."""
    full = np.array([float(s[name](None)) for s in per_seed])
    idx = bootstrap_indices(n, n_boot, seed, groups)
    reps = np.mean([np.asarray(s[name](idx), dtype=np.float64) for s in per_seed], axis=0)
    low, high = _percentiles(reps, alpha)
    return {
        "mean": float(np.mean(full)),
        "low": low,
        "high": high,
        "per_seed": [float(v) for v in full],
        "n_boot": int(n_boot),
    }


def paired_difference(
    name: str,
    a: Sequence[dict[str, Scorer]],
    b: Sequence[dict[str, Scorer]],
    n: int,
    groups: np.ndarray | None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """metric(a) - metric(b) on the same resampled cases, each averaged over its own seeds:
    ``{"difference", "low", "high", "p_value", "n_boot"}``."""
    full = np.mean([float(s[name](None)) for s in a]) - np.mean([float(s[name](None)) for s in b])
    idx = bootstrap_indices(n, n_boot, seed, groups)
    d = np.mean([np.asarray(s[name](idx), dtype=np.float64) for s in a], axis=0) - np.mean(
        [np.asarray(s[name](idx), dtype=np.float64) for s in b], axis=0
    )
    low, high = _percentiles(d, alpha)
    return {
        "difference": float(full),
        "low": low,
        "high": high,
        "p_value": bootstrap_p_value(d),
        "n_boot": int(n_boot),
    }
