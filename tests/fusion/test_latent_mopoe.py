"""mopoe: mixture over modality subsets of their PoE, with the generalized ELBO (Sutter et al.)."""

from __future__ import annotations

import itertools

import torch
from torch.distributions import Normal, kl_divergence

from fusiondx.fusion._latent import (
    present_features,
    product_of_experts,
    reparameterise,
    sample_subsets,
)
from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 6, "c": 7}
NAMES = sorted(DIMS)


def _data(seed: int = 0):
    torch.manual_seed(seed)
    feats = {m: torch.randn(4, d) for m, d in DIMS.items()}
    mask = torch.tensor(
        [[True, True, True], [True, False, True], [False, True, False], [False] * 3]
    )
    return feats, mask


def _kl_of_poe(mu_list, logvar_list) -> torch.Tensor:
    """KL to N(0, I) of the prior times the given experts (torch.distributions, by precisions)."""
    prec = 1.0 + sum(torch.exp(-lv) for lv in logvar_list)
    mean = sum(torch.exp(-lv) * mu for mu, lv in zip(mu_list, logvar_list, strict=True)) / prec
    q = Normal(mean, prec.rsqrt())
    return kl_divergence(q, Normal(torch.zeros_like(mean), torch.ones_like(mean))).sum(-1)


def _subset_kl_by_hand(mu_m, lv_m, present: list[int]) -> torch.Tensor:
    kls = [
        _kl_of_poe([mu_m[j] for j in s], [lv_m[j] for j in s])
        for r in range(1, len(present) + 1)
        for s in itertools.combinations(present, r)
    ]
    return torch.stack(kls).mean() if kls else torch.tensor(0.0)


def test_kl_term_is_the_mean_kl_over_the_nonempty_subsets_of_the_present() -> None:
    feats, mask = _data()
    f = create_fusion(
        "mopoe", in_dims=DIMS, out_dim=8, latent=4, dropout=0.0, kl_weight=0.2
    ).train()
    f(feats, mask)
    mu_m, lv_m = f.experts(present_features(feats, mask, NAMES))
    per_case = torch.stack(
        [
            _subset_kl_by_hand(mu_m[i], lv_m[i], [j for j in range(3) if mask[i, j]])
            for i in range(4)
        ]
    )  # case 0: 7 subsets, case 1: 3, case 2: 1, case 3: none (0)
    assert per_case[3] == 0
    assert torch.allclose(f.subset_kl(mu_m, lv_m, mask), per_case, atol=1e-4)
    assert torch.allclose(f.aux_losses["kl"], 0.2 * per_case.mean(), atol=1e-4)


def test_more_than_six_modalities_estimate_the_subset_mean_by_sampling() -> None:
    torch.manual_seed(1)
    dims = {f"m{i}": 3 for i in range(7)}
    f = create_fusion("mopoe", in_dims=dims, out_dim=4, latent=2, dropout=0.0).train()
    mu_m, lv_m = torch.randn(1, 7, 2), torch.randn(1, 7, 2)
    mask = torch.tensor([[True, True, False, True, True, True, True]])
    present = [j for j in range(7) if mask[0, j]]
    exact = _subset_kl_by_hand(mu_m[0], lv_m[0], present)  # 63 subsets
    estimate = torch.stack([f.subset_kl(mu_m, lv_m, mask)[0] for _ in range(300)]).mean()
    assert torch.allclose(estimate, exact, rtol=0.05), (float(estimate), float(exact))


def test_recon_decodes_every_present_modality_from_one_mixture_component_per_case() -> None:
    feats, mask = _data()
    f = create_fusion(
        "mopoe", in_dims=DIMS, out_dim=8, latent=4, dropout=0.0, recon_weight=1.5
    ).train()
    torch.manual_seed(5)
    out = f(feats, mask)
    xs = present_features(feats, mask, NAMES)
    mu_m, lv_m = f.experts(xs)
    torch.manual_seed(5)  # replay: the head's z, then the subset, then the mixture's z
    z = reparameterise(*product_of_experts(mu_m, lv_m, mask))
    subset = sample_subsets(mask)[:, 0]
    z_mix = reparameterise(*product_of_experts(mu_m, lv_m, subset))
    assert torch.allclose(out, f.head(z))
    expected = 1.5 * f.decoders.error(z_mix, xs, mask).mean()
    assert torch.allclose(f.aux_losses["recon"], expected, atol=1e-6)
    # the component is a subset of the present modalities: a modality it lacks is still decoded
    assert (subset.sum(1) <= mask.sum(1)).all() and not (subset & ~mask).any()


def test_eval_uses_the_mean_of_the_full_poe_deterministically_and_imputes_from_it() -> None:
    feats, mask = _data()
    f = create_fusion("mopoe", in_dims=DIMS, out_dim=8, latent=4).eval()
    out = f(feats, mask)
    assert torch.equal(out, f(feats, mask)) and f.aux_losses == {}
    mu, _ = f.posterior(feats, mask)
    assert torch.allclose(out, f.head(mu))
    imputed = f.impute(feats, mask)
    assert {m: v.shape for m, v in imputed.items()} == {m: (4, d) for m, d in DIMS.items()}
    assert all(torch.allclose(imputed[m], f.decoders.nets[m](mu)) for m in DIMS)
    assert torch.equal(mu[3], torch.zeros(4))  # nothing present: the prior's mean
