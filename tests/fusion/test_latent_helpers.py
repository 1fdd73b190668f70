"""The shared pieces of the latent fusions (fusion/_latent.py) against their equations."""

from __future__ import annotations

import itertools

import torch
from torch.distributions import Normal, kl_divergence

from fusiondx.fusion._latent import (
    Decoders,
    kl_standard_normal,
    nonempty_subsets,
    product_of_experts,
    sample_subsets,
)


def _poe_by_hand(mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor):
    """Precision = 1 (prior) + sum of present precisions; mean = precision-weighted mean."""
    b, m, d = mu.shape
    means, logvars = torch.zeros(b, d), torch.zeros(b, d)
    for i in range(b):
        prec = torch.ones(d, dtype=torch.float64)
        num = torch.zeros(d, dtype=torch.float64)
        for j in range(m):
            if mask[i, j]:
                t = torch.exp(-logvar[i, j].double())
                prec += t
                num += t * mu[i, j].double()
        means[i] = (num / prec).float()
        logvars[i] = (-torch.log(prec)).float()
    return means, logvars


def test_poe_precision_is_the_sum_and_the_mean_precision_weighted() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3, 5) * 2, torch.randn(4, 3, 5)
    mask = torch.tensor(
        [[True, True, True], [True, False, True], [False, True, False], [False] * 3]
    )
    mean, lv = product_of_experts(mu, logvar, mask)
    hand_mean, hand_lv = _poe_by_hand(mu, logvar, mask)
    assert torch.allclose(mean, hand_mean, atol=1e-5) and torch.allclose(lv, hand_lv, atol=1e-5)
    # nothing present: the prior expert alone
    assert torch.equal(mean[3], torch.zeros(5)) and torch.equal(lv[3], torch.zeros(5))
    # more experts, more precision: every variance shrinks from one expert to all three
    _, lv_one = product_of_experts(mu, logvar, torch.tensor([[True, False, False]] * 4))
    assert (lv[0] < lv_one[0]).all()


def test_poe_is_finite_for_extreme_experts_and_ignores_absent_ones() -> None:
    mu = torch.tensor([[[3.0], [-1.0], [float("nan")]]], requires_grad=True)
    logvar = torch.tensor([[[-200.0], [200.0], [float("nan")]]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    mean, lv = product_of_experts(mu, logvar, mask)
    # precision e^200 overflows float32; in log space the confident expert simply wins
    assert torch.isfinite(mean).all() and torch.isfinite(lv).all()
    assert torch.allclose(mean, torch.tensor([[3.0]])) and torch.allclose(
        lv, torch.tensor([[-200.0]])
    )
    (mean.sum() + lv.sum()).backward()
    assert torch.isfinite(mu.grad).all() and mu.grad[0, 2].abs().sum() == 0
    assert torch.isfinite(logvar.grad).all() and logvar.grad[0, 2].abs().sum() == 0


def test_kl_closed_form_matches_torch_distributions() -> None:
    torch.manual_seed(1)
    mu, logvar = torch.randn(6, 4) * 3, torch.randn(6, 4) * 2
    expected = kl_divergence(
        Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(4), torch.ones(4))
    ).sum(-1)
    assert torch.allclose(kl_standard_normal(mu, logvar), expected, atol=1e-4)
    assert torch.allclose(kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_nonempty_subsets_lists_each_subset_once() -> None:
    s = nonempty_subsets(4)
    assert s.shape == (15, 4) and s.any(dim=1).all()
    assert len({tuple(r.tolist()) for r in s}) == 15


def test_sampled_subsets_are_uniform_over_the_nonempty_subsets_of_the_present() -> None:
    torch.manual_seed(2)
    mask = torch.tensor([[True, False, True, True], [False] * 4, [False, True, False, False]])
    s = sample_subsets(mask, 7000)  # (3, 7000, 4)
    assert not (s & ~mask.unsqueeze(1)).any()  # only present modalities
    assert s[0].any(dim=-1).all() and not s[1].any() and (s[2] == mask[2]).all()
    counts = {}
    for row in s[0].tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    expected = {
        tuple(bool(b) for b in (c[0], False, c[1], c[2]))
        for c in itertools.product([0, 1], repeat=3)
        if any(c)
    }
    assert set(counts) == expected  # all 7 subsets of the 3 present modalities appear
    assert all(abs(n - 1000) < 150 for n in counts.values()), counts


def test_decoder_error_sums_the_present_modalities_mse() -> None:
    torch.manual_seed(3)
    dec = Decoders({"a": 3, "b": 2}, latent=4, hidden=8)
    z = torch.randn(2, 4)
    xs = [torch.randn(2, 3), torch.randn(2, 2)]
    mask = torch.tensor([[True, True], [False, True]])
    out = dec(z)
    err = dec.error(z, xs, mask)
    by_hand = torch.stack(
        [
            ((out["a"][0] - xs[0][0]) ** 2).mean() + ((out["b"][0] - xs[1][0]) ** 2).mean(),
            ((out["b"][1] - xs[1][1]) ** 2).mean(),
        ]
    )
    assert torch.allclose(err, by_hand, atol=1e-6)
