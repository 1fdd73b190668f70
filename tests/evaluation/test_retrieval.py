"""Retrieval ranks and Recall@K against a brute-force count, chance and the bootstrap."""

from __future__ import annotations

import numpy as np
import torch

from fusiondx.evaluation.retrieval import Ranks, partner_ranks, retrieval_scores


def test_ranks_match_a_brute_force_count() -> None:
    g = torch.Generator().manual_seed(0)
    q, gal = torch.randn(30, 8, generator=g), torch.randn(30, 8, generator=g)
    ranks = partner_ranks(q, gal)
    qn = q / q.norm(dim=1, keepdim=True)
    gn = gal / gal.norm(dim=1, keepdim=True)
    for i in range(30):
        sims = [float(qn[i] @ gn[j]) for j in range(30)]
        assert ranks.better[i] == sum(s > sims[i] + 1e-6 for s in sims)
        assert ranks.tied[i] == 1  # random vectors do not tie
    assert (ranks.expected == ranks.better + 1).all()


def test_ties_are_broken_at_random_in_expectation() -> None:
    x = torch.randn(20, 5)
    perfect = partner_ranks(x, x * 3.0)
    assert (perfect.expected == 1).all() and (perfect.hit(1) == 1).all()
    const = torch.ones(20, 5)
    flat = partner_ranks(const, const)
    assert (flat.better == 0).all() and (flat.tied == 20).all()
    # a constant embedding scores exactly chance: no better, no worse
    s = retrieval_scores(flat, n_boot=50)
    assert s["recall@10"]["value"] == s["recall@10"]["chance"] == 0.5
    assert s["median_rank"]["value"] == s["median_rank"]["chance"] == 10.5
    # two identical reports: the partner is first or second, half a hit at K = 1
    pair = Ranks(np.array([0]), np.array([2]))
    assert pair.hit(1)[0] == 0.5 and pair.hit(2)[0] == 1.0 and pair.expected[0] == 1.5


def test_scores_and_chance() -> None:
    better = np.array([0, 1, 2, 9, 10, 39, 49, 59, 69, 79])
    ranks = Ranks(better, np.ones(10, dtype=np.int64))
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
