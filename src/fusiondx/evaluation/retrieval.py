"""Cross-modal retrieval scores: where each case's own partner ranks among every candidate.

A query is one case's embedding in modality A; the gallery is every case's embedding in
modality B (the cases that have both); the right answer is the query's own case. Recall@K is
the share of queries whose partner ranks in the top K, the median rank is that of the partner
(1 = first), ties broken at random in expectation (:class:`Ranks`). Chance, for a gallery of N, is K / N and (N + 1) / 2. Confidence intervals resample
the queries (a percentile bootstrap over cases, the gallery held fixed), vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch


class Ranks(NamedTuple):
    """Per query: how many candidates score above its partner, and how many tie with it (the
    partner included). With ties broken at random, the partner's expected rank is
    ``better + (tied + 1) / 2`` and its chance of being in the top K is
    ``clip((K - better) / tied, 0, 1)``: identical reports (common in clinical text) neither help
    nor hurt a model, and a constant embedding scores exactly chance."""

    better: np.ndarray
    tied: np.ndarray

    @property
    def expected(self) -> np.ndarray:
        return self.better + (self.tied + 1) / 2

    def hit(self, k: int) -> np.ndarray:
        return np.clip((k - self.better) / self.tied, 0.0, 1.0)


def partner_ranks(queries: torch.Tensor, gallery: torch.Tensor, *, tol: float = 1e-6) -> Ranks:
    """Where row i of ``gallery`` ranks for query row i, by cosine similarity.

    Similarities within ``tol`` of the partner's count as ties.
    """
    if queries.shape != gallery.shape:
        raise ValueError(
            f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)} differ"
        )
    q = torch.nn.functional.normalize(queries.float(), dim=-1)
    g = torch.nn.functional.normalize(gallery.float(), dim=-1)
    sim = q @ g.T
    own = sim.diagonal().unsqueeze(1)
    better = (sim > own + tol).sum(dim=1)
    tied = ((sim - own).abs() <= tol).sum(dim=1)
    return Ranks(better.cpu().numpy().astype(np.int64), tied.cpu().numpy().astype(np.int64))


def retrieval_scores(
    ranks: Ranks,
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
    n = len(ranks.better)
    if n == 0:
        raise ValueError("no query to score: no case has both modalities")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out: dict[str, Any] = {"n": n}
    for k in ks:
        hits = ranks.hit(k)
        reps = hits[idx].mean(axis=1)
        out[f"recall@{k}"] = {
            "value": float(hits.mean()),
            "low": float(np.percentile(reps, lo)),
            "high": float(np.percentile(reps, hi)),
            "chance": min(1.0, k / n),
        }
    expected = ranks.expected
    med = np.median(expected[idx], axis=1)
    out["median_rank"] = {
        "value": float(np.median(expected)),
        "low": float(np.percentile(med, lo)),
        "high": float(np.percentile(med, hi)),
        "chance": (n + 1) / 2,
    }
    return out
