"""Retrieval ranks and Recall@K against a brute-force count, chance and the bootstrap."""

from __future__ import annotations

import numpy as np
import torch

from fusiondx.evaluation.retrieval import partner_ranks, retrieval_scores


def test_ranks_match_a_brute_force_count() -> None:
    g = torch.Generator().manual_seed(0)
    q, gal = torch.randn(30, 8, generator=g), torch.randn(30, 8, generator=g)
    ranks = partner_ranks(q, gal)
    qn = q / q.norm(dim=1, keepdim=True)
    gn = gal / gal.norm(dim=1, keepdim=True)
    for i in range(30):
        sims = [float(qn[i] @ gn[j]) for j in range(30)]
        assert ranks[i] == 1 + sum(s > sims[i] + 1e-6 for j, s in enumerate(sims) if j != i)


def test_perfect_and_constant_embeddings() -> None:
    x = torch.randn(20, 5)
    assert (partner_ranks(x, x * 3.0) == 1).all()
    const = torch.ones(20, 5)
    # ties count against the partner: a constant model ranks every partner last, below chance
    assert (partner_ranks(const, const) == 20).all()
    s = retrieval_scores(partner_ranks(const, const), n_boot=50)
    assert s["recall@10"]["value"] == 0.0 < s["recall@10"]["chance"] == 0.5


def test_scores_and_chance() -> None:
    ranks = np.array([1, 2, 3, 10, 11, 40, 50, 60, 70, 80])
    s = retrieval_scores(ranks, ks=(1, 10), n_boot=500, seed=1)
    assert s["n"] == 10
    assert s["recall@1"]["value"] == 0.1 and s["recall@10"]["value"] == 0.4
    assert s["recall@10"]["chance"] == 1.0 and s["recall@1"]["chance"] == 0.1
    assert s["median_rank"]["value"] == 25.5 and s["median_rank"]["chance"] == 5.5
    for k in ("recall@1", "recall@10", "median_rank"):
        assert s[k]["low"] <= s[k]["value"] <= s[k]["high"]
    assert s == retrieval_scores(ranks, ks=(1, 10), n_boot=500, seed=1)


def test_random_embeddings_sit_near_chance() -> None:
    g = torch.Generator().manual_seed(3)
    ranks = partner_ranks(torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g))
    s = retrieval_scores(ranks, ks=(10,), n_boot=300)
    assert s["recall@10"]["low"] <= s["recall@10"]["chance"] <= s["recall@10"]["high"]
