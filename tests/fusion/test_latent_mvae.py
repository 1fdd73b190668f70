"""mvae: product-of-experts posterior and the (sub-sampled) ELBO terms of Wu & Goodman (2018)."""

from __future__ import annotations

import torch
from torch.distributions import Normal, kl_divergence

from fusiondx.fusion._latent import present_features, reparameterise
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


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return kl_divergence(
        Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ).sum(-1)


def _poe(mu_list, logvar_list):
    """Prior N(0, I) times the given experts, by their precisions."""
    prec = 1.0 + sum(torch.exp(-lv) for lv in logvar_list)
    mean = sum(torch.exp(-lv) * mu for mu, lv in zip(mu_list, logvar_list, strict=True)) / prec
    return mean, -torch.log(prec)


def test_posterior_is_the_product_of_the_present_experts_and_the_prior() -> None:
    feats, mask = _data()
    f = create_fusion("mvae", in_dims=DIMS, out_dim=8, latent=4).eval()
    mu_m, lv_m = f.experts(present_features(feats, mask, NAMES))
    mu, lv = f.posterior(feats, mask)
    for i in range(4):
        present = [j for j in range(3) if mask[i, j]]
        if present:
            e_mu, e_lv = _poe([mu_m[i, j] for j in present], [lv_m[i, j] for j in present])
        else:
            e_mu, e_lv = torch.zeros(4), torch.zeros(4)
        assert torch.allclose(mu[i], e_mu, atol=1e-5) and torch.allclose(lv[i], e_lv, atol=1e-5)


def test_kl_term_is_the_closed_form_kl_of_the_joint_and_of_each_single_modality() -> None:
    feats, mask = _data()
    for subsample in (False, True):
        f = create_fusion(
            "mvae",
            in_dims=DIMS,
            out_dim=8,
            latent=4,
            dropout=0.0,
            kl_weight=0.3,
            subsample=subsample,
        ).train()
        f(feats, mask)
        mu_m, lv_m = f.experts(present_features(feats, mask, NAMES))
        mu, lv = f.posterior(feats, mask)
        per_case = _kl(mu, lv)
        if subsample:
            for i in range(4):
                for j in range(3):
                    if mask[i, j]:
                        per_case[i] += _kl(*_poe([mu_m[i, j]], [lv_m[i, j]]))
        assert torch.allclose(f.aux_losses["kl"], 0.3 * per_case.mean(), atol=1e-4), subsample


def test_recon_term_decodes_each_present_modality_from_the_sampled_z() -> None:
    feats, mask = _data()
    f = create_fusion(
        "mvae", in_dims=DIMS, out_dim=8, latent=4, dropout=0.0, recon_weight=2.0, subsample=False
    ).train()
    torch.manual_seed(7)
    out = f(feats, mask)
    mu, lv = f.posterior(feats, mask)
    torch.manual_seed(7)  # the same noise: z is mu + sigma * eps
    z = reparameterise(mu, lv)
    xs = present_features(feats, mask, NAMES)
    assert torch.allclose(f.aux_losses["recon"], 2.0 * f.decoders.error(z, xs, mask).mean())
    assert torch.allclose(out, f.head(z))  # the fused vector reads the sample in training


def test_eval_uses_the_posterior_mean_deterministically_and_sets_no_aux_loss() -> None:
    feats, mask = _data()
    f = create_fusion("mvae", in_dims=DIMS, out_dim=8, latent=4).eval()
    out = f(feats, mask)
    assert torch.equal(out, f(feats, mask)) and f.aux_losses == {}
    assert torch.allclose(out, f.head(f.posterior(feats, mask)[0]))
    f.train()
    assert not torch.allclose(f(feats, mask), out)  # training samples z


def test_impute_decodes_every_modality_from_the_posterior_mean() -> None:
    feats, mask = _data()
    f = create_fusion("mvae", in_dims=DIMS, out_dim=8, latent=4).eval()
    out = f.impute(feats, mask)
    assert {m: v.shape for m, v in out.items()} == {m: (4, d) for m, d in DIMS.items()}
    assert all(
        torch.allclose(out[m], f.decoders.nets[m](f.posterior(feats, mask)[0])) for m in DIMS
    )
    # a case with nothing present decodes the prior mean, whatever its placeholders hold
    noisy = {m: v.clone() for m, v in feats.items()}
    for j, m in enumerate(NAMES):
        noisy[m][~mask[:, j]] = float("nan")
    again = f.impute(noisy, mask)
    assert all(torch.equal(out[m], again[m]) for m in DIMS)
    assert all(torch.allclose(out[m][3], f.decoders.nets[m](torch.zeros(4))) for m in DIMS)


def test_subsampled_recon_adds_each_single_modality_decoded_from_its_own_posterior() -> None:
    feats, mask = _data()
    f = create_fusion(
        "mvae", in_dims=DIMS, out_dim=8, latent=4, dropout=0.0, recon_weight=1.0
    ).train()
    torch.manual_seed(3)
    f(feats, mask)
    xs = present_features(feats, mask, NAMES)
    mu_m, lv_m = f.experts(xs)
    torch.manual_seed(3)  # replay the noise: first the joint z, then one z per single modality
    z = reparameterise(*f.posterior(feats, mask))
    singles = [_poe([mu_m[:, j]], [lv_m[:, j]]) for j in range(3)]
    z_s = reparameterise(
        torch.stack([s[0] for s in singles], 1), torch.stack([s[1] for s in singles], 1)
    )
    per_case = f.decoders.error(z, xs, mask)
    for j, m in enumerate(NAMES):
        err = ((f.decoders.nets[m](z_s[:, j]) - xs[j]) ** 2).mean(-1)
        per_case += torch.where(mask[:, j], err, torch.zeros_like(err))
    assert torch.allclose(f.aux_losses["recon"], per_case.mean(), atol=1e-5)
