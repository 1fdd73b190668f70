"""DrFuse: the shared features combine as probabilities, disease-wise attention sees only present
parts, and the disentanglement losses match their equations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fusiondx.fusion.drfuse import bernoulli_jsd, combine_shared
from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 7, "c": 6}
MASK = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])


def _setup(**options):
    torch.manual_seed(0)
    f = create_fusion("drfuse", in_dims=DIMS, out_dim=4, width=8, dropout=0.0, **options)
    feats = {m: torch.randn(3, d) for m, d in DIMS.items()}
    return f, feats


def test_combined_shared_is_the_papers_two_modality_formula_and_its_generalisation() -> None:
    torch.manual_seed(1)
    s = torch.randn(4, 3, 6)
    both = torch.tensor([[True, True, False]] * 4)
    h1, h2 = s[:, 0], s[:, 1]
    # DrFuse's code: logsumexp([h1+h2, h1+h2, h1, h2]) - logsumexp([0, 0, h1, h2])
    paper = torch.logsumexp(torch.stack([h1 + h2, h1 + h2, h1, h2]), 0) - torch.logsumexp(
        torch.stack([torch.zeros_like(h1), torch.zeros_like(h1), h1, h2]), 0
    )
    assert torch.allclose(combine_shared(s, both), paper, atol=1e-5)
    one = torch.tensor([[False, False, True]] * 4)
    assert torch.allclose(combine_shared(s, one), s[:, 2], atol=1e-5)
    p = torch.sigmoid(s).mean(dim=1)
    assert torch.allclose(
        combine_shared(s, torch.ones(4, 3, dtype=torch.bool)), torch.logit(p), atol=1e-4
    )


def test_bernoulli_jsd_matches_the_definition() -> None:
    a, b = torch.tensor([0.3, -2.0, 1.5]), torch.tensor([-1.0, -2.0, 4.0])
    p, q = torch.sigmoid(a), torch.sigmoid(b)

    def kl(x, y):
        return x * torch.log(x / y) + (1 - x) * torch.log((1 - x) / (1 - y))

    m = (p + q) / 2
    expected = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    got = bernoulli_jsd(a, b)
    assert torch.allclose(got, expected, atol=1e-6)
    assert abs(got[1]) < 1e-6 and (got <= math.log(2)).all()
    assert torch.allclose(got, bernoulli_jsd(b, a))


def test_disease_attention_weighs_only_present_parts_and_each_disease_has_its_own() -> None:
    f, feats = _setup(num_diseases=3)
    per_disease, weights, _, _ = f.attention(feats, MASK)
    assert per_disease.shape == (3, 3, 8) and weights.shape == (3, 3, 4)  # [shared, a, b, c]
    valid = torch.cat([MASK.any(1, keepdim=True), MASK], dim=1)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 3))
    assert (weights[~valid.unsqueeze(1).expand_as(weights)] == 0).all()
    assert (weights[valid.unsqueeze(1).expand_as(weights)] > 0).all()
    assert not torch.allclose(weights[2, 0], weights[2, 1])  # disease-specific keys


def test_shared_and_distinct_losses_match_their_equations() -> None:
    f, feats = _setup(shared_weight=0.5, distinct_weight=3.0)
    f.train()
    f(feats, MASK)
    losses = dict(f.aux_losses)
    _, _, shared, distinct = f.attention(feats, MASK)
    jsd, cos = [], []
    for b in range(3):
        present = [j for j in range(3) if MASK[b, j]]
        for j in present:
            cos.append(F.cosine_similarity(shared[b, j], distinct[b, j], dim=0).abs())
        for x in present:
            for y in present:
                if x < y:
                    p, q = torch.sigmoid(shared[b, x]), torch.sigmoid(shared[b, y])
                    m = (p + q) / 2

                    def kl(u, v):
                        return u * torch.log(u / v) + (1 - u) * torch.log((1 - u) / (1 - v))

                    jsd.append((0.5 * kl(p, m) + 0.5 * kl(q, m)).mean())
    assert len(cos) == 6 and len(jsd) == 4
    assert torch.allclose(losses["shared"], 0.5 * torch.stack(jsd).mean(), atol=1e-6)
    assert torch.allclose(losses["distinct"], 3.0 * torch.stack(cos).mean(), atol=1e-6)


def test_a_case_with_one_modality_fuses_its_shared_and_distinct_parts_only() -> None:
    f, feats = _setup()
    f.eval()
    out = f(feats, MASK)
    changed = {m: x.clone() for m, x in feats.items()}
    changed["a"][1] += 5.0  # case 1 has only b
    changed["b"][0] += 5.0  # case 0 misses b
    out2 = f(changed, MASK)
    assert torch.allclose(out[:2], out2[:2])
    changed["b"][1] += 5.0
    assert not torch.allclose(out[1], f(changed, MASK)[1])
