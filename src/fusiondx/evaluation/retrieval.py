"""Cross-modal retrieval scores: where each case's own partner ranks among every candidate.

A query is one case's embedding in modality A; the gallery is every case's embedding in
modality B (the cases that have both); the right answer is the query's own case. Recall@K is
the share of queries whose partner ranks in the top K, the median rank is that of the partner
(1 = first). Chance, for a gallery of N, is K / N and (N + 1) / 2. Confidence intervals resample
the queries (a percentile bootstrap over cases, the gallery held fixed), vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def partner_ranks(queries: torch.Tensor, gallery: torch.Tensor) -> np.ndarray:
    """Rank (1 = best) of row i of ``gallery`` for query row i, by cosine similarity.

    Ties count against the partner (a constant embedding ranks every partner last), so a model
    that tells nothing apart scores at or below chance, never above it.
    """
    if queries.shape != gallery.shape:
        raise ValueError(
            f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)} differ"
        )
    q = torch.nn.functional.normalize(queries.float(), dim=-1)
    g = torch.nn.functional.normalize(gallery.float(), dim=-1)
    sim = q @ g.T
    own = sim.diagonal().unsqueeze(1)
    return ((sim >= own).sum(dim=1)).cpu().numpy().astype(np.int64)


def retrieval_scores(
    ranks: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Recall@K and median rank of partner ``ranks``, each with a bootstrap CI and its chance level.

    Returns ``{"n": N, "recall@K": {"value", "low", "high", "chance"}, ...,
    "median_rank": {"value", "low", "high", "chance"}}``.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    n = len(ranks)
    if n == 0:
        raise ValueError("no query to score: no case has both modalities")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = ranks[idx]  # (n_boot, n)
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out: dict[str, Any] = {"n": n}
    for k in ks:
        hits = boot <= k
        reps = hits.mean(axis=1)
        out[f"recall@{k}"] = {
            "value": float((ranks <= k).mean()),
            "low": float(np.percentile(reps, lo)),
            "high": float(np.percentile(reps, hi)),
            "chance": min(1.0, k / n),
        }
    med = np.median(boot, axis=1)
    out["median_rank"] = {
        "value": float(np.median(ranks)),
        "low": float(np.percentile(med, lo)),
        "high": float(np.percentile(med, hi)),
        "chance": (n + 1) / 2,
    }
    return out
