"""autoencoder: a joint latent trained to reconstruct every present modality (Ngiam et al.)."""

from __future__ import annotations

import torch

from fusiondx.fusion._latent import present_features, sample_subsets
from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 6, "c": 7}


def _data(n: int = 6, seed: int = 0):
    torch.manual_seed(seed)
    feats = {m: torch.randn(n, d) for m, d in DIMS.items()}
    mask = torch.tensor([[True, True, True], [True, False, True], [False, True, False]] * (n // 3))
    return feats, mask


def test_recon_loss_is_the_weighted_mse_of_the_present_modalities_from_the_latent() -> None:
    feats, mask = _data()
    f = create_fusion(
        "autoencoder",
        in_dims=DIMS,
        out_dim=8,
        dropout=0.0,
        recon_weight=0.5,
        cross_reconstruction=False,
    ).train()
    latent = f(feats, mask)
    assert set(f.aux_losses) == {"recon"}
    rec = f.decoders(latent)
    per_case = torch.zeros(len(mask))
    for j, m in enumerate(sorted(DIMS)):
        err = ((rec[m] - feats[m]) ** 2).mean(dim=-1)
        per_case += torch.where(mask[:, j], err, torch.zeros_like(err))
    assert torch.allclose(f.aux_losses["recon"], 0.5 * per_case.mean(), atol=1e-6)
    # the latent is the fused vector itself, and encode() gives the same in eval mode
    f.eval()
    assert torch.allclose(f(feats, mask), f.encode(feats, mask))


def test_cross_reconstruction_encodes_a_subset_and_asks_for_every_present_modality() -> None:
    feats, mask = _data()
    f = create_fusion("autoencoder", in_dims=DIMS, out_dim=8, dropout=0.0).train()
    torch.manual_seed(1)
    f(feats, mask)
    torch.manual_seed(1)  # the same subsets again
    subset = sample_subsets(mask)[:, 0]
    assert not (subset & ~mask).any() and subset.any(dim=1).all()
    xs = present_features(feats, mask, sorted(DIMS))
    expected = f.decoders.error(f.encode(feats, subset), xs, mask).mean()
    assert torch.allclose(f.aux_losses["cross_recon"], expected, atol=1e-6)


def test_impute_returns_every_modality_deterministically_from_the_present_ones() -> None:
    feats, mask = _data()
    f = create_fusion("autoencoder", in_dims=DIMS, out_dim=8).eval()
    out = f.impute(feats, mask)
    assert {m: v.shape for m, v in out.items()} == {m: (6, d) for m, d in DIMS.items()}
    assert all(torch.isfinite(v).all() for v in out.values())
    # masked placeholders are never read; eval is deterministic
    noisy = {m: v.clone() for m, v in feats.items()}
    for j, m in enumerate(sorted(DIMS)):
        noisy[m][~mask[:, j]] = float("nan")
    again = f.impute(noisy, mask)
    assert all(torch.equal(out[m], again[m]) for m in DIMS)
    assert f.aux_losses == {}


def test_trained_autoencoder_imputes_a_missing_modality_from_the_others(one_thread) -> None:
    # b is a linear function of a; after training on the reconstruction losses alone, imputing
    # b from a must beat predicting b's mean (error = b's variance) by far. The cross
    # reconstruction is what teaches it: without it this error was 0.2 x the variance, with it 0.01.
    torch.manual_seed(2)
    n = 64
    a = torch.randn(n, 6)
    feats = {"a": a, "b": a @ torch.randn(6, 4) / 2}
    dims = {"a": 6, "b": 4}
    f = create_fusion("autoencoder", in_dims=dims, out_dim=16, hidden=32, dropout=0.0).train()
    opt = torch.optim.Adam(f.parameters(), lr=0.01)
    both = torch.ones(n, 2, dtype=torch.bool)
    for _ in range(100):
        f(feats, both)
        loss = f.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    f.eval()
    only_a = torch.tensor([[True, False]] * n)
    err = ((f.impute(feats, only_a)["b"] - feats["b"]) ** 2).mean()
    baseline = ((feats["b"] - feats["b"].mean(0)) ** 2).mean()
    assert err < 0.1 * baseline, (float(err), float(baseline))
