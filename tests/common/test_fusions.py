"""The contract every registered fusion keeps; a new fusion is tested the moment it registers."""

from __future__ import annotations

import pytest
import torch

import fusiondx.fusion  # noqa: F401  (registers every strategy)
from fusiondx.registry import FUSIONS

ENTRIES = FUSIONS.entries()
NAMES = [e.name for e in ENTRIES]


def _setup(name: str, n_mod: int = 3, batch: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    entry = FUSIONS.get(name)
    mods = [f"m{i}" for i in range(n_mod)]
    if entry.cls.level == "late":
        dims = {m: 2 for m in mods}
        out_dim = 2
        feats = {m: torch.rand(batch, 2, requires_grad=True) for m in mods}
    elif entry.cls.uses_levels:
        # two modalities with several depths of different widths, the others with one
        dims = {m: 6 + 2 * i for i, m in enumerate(mods)}
        level_dims = {
            m: [5 + j for j in range(3 - i % 3)][:-1] + [dims[m]] for i, m in enumerate(mods)
        }
        out_dim = 8
        feats = {
            m: [torch.randn(batch, d, requires_grad=True) for d in level_dims[m]] for m in mods
        }
        fusion = FUSIONS.create(name, in_dims=dims, out_dim=out_dim, level_dims=level_dims).eval()
        return fusion, feats, dims, out_dim
    elif entry.cls.uses_tokens:
        dims = {m: 6 + 2 * i for i, m in enumerate(mods)}
        out_dim = 8
        feats = {
            m: torch.randn(batch, 2 + i, dims[m], requires_grad=True) for i, m in enumerate(mods)
        }
    else:
        dims = {m: 6 + 2 * i for i, m in enumerate(mods)}
        out_dim = 8
        feats = {m: torch.randn(batch, dims[m], requires_grad=True) for m in mods}
    fusion = FUSIONS.create(name, in_dims=dims, out_dim=out_dim).eval()
    return fusion, feats, dims, out_dim


def _leaves(f) -> list[torch.Tensor]:
    """A modality's input tensors: one, or one per depth for ``levels`` fusions."""
    return list(f) if isinstance(f, list) else [f]


def _apply(f, fn):
    return [fn(t) for t in f] if isinstance(f, list) else fn(f)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_mod", [1, 3, 6])
def test_shape_and_finite(name: str, n_mod: int) -> None:
    fusion, feats, _, out_dim = _setup(name, n_mod)
    mask = torch.ones(4, n_mod, dtype=torch.bool)
    out = fusion(feats, mask)
    assert out.shape == (4, out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_present_and_not_masked(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.tensor([[True, False, True]] * 4)
    fusion(feats, mask).sum().backward()
    for m in ("m0", "m2"):
        assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in _leaves(feats[m])), m
    assert all(t.grad is None or t.grad.abs().sum() == 0 for t in _leaves(feats["m1"]))


@pytest.mark.parametrize("name", NAMES)
def test_missing_modality_values_change_nothing(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.tensor(
        [[True, False, True], [False, True, True], [True, True, False], [True, False, False]]
    )
    out1 = fusion(feats, mask)
    noisy = {m: _apply(f, lambda t: t.detach().clone()) for m, f in feats.items()}
    for j, m in enumerate(sorted(noisy)):
        for t in _leaves(noisy[m]):
            t[~mask[:, j]] = 1e3 if FUSIONS.get(name).cls.level != "late" else 0.999
    out2 = fusion(noisy, mask)
    assert torch.allclose(out1, out2, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_modality_order_irrelevant(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.ones(4, 3, dtype=torch.bool)
    reordered = {m: feats[m] for m in reversed(list(feats))}
    assert torch.allclose(fusion(feats, mask), fusion(reordered, mask))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_state_dict_reload(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.ones(4, 3, dtype=torch.bool)
    clone = type(fusion)(**fusion.get_config()).eval()
    clone.load_state_dict(fusion.state_dict(), strict=True)
    assert torch.allclose(fusion(feats, mask), clone(feats, mask))


@pytest.mark.parametrize("name", NAMES)
def test_case_with_nothing_present_is_finite_and_ignores_placeholders(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.zeros(4, 3, dtype=torch.bool)
    out1 = fusion(feats, mask)
    out2 = fusion({m: _apply(f, lambda t: torch.full_like(t, 0.9)) for m, f in feats.items()}, mask)
    assert torch.isfinite(out1).all() and torch.allclose(out1, out2)


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one(name: str) -> None:
    fusion, feats, _, out_dim = _setup(name, batch=1)
    out = fusion(feats, torch.tensor([[True, False, True]]))
    assert out.shape == (1, out_dim) and torch.isfinite(out).all()


def test_every_fusion_names_its_paper_and_level() -> None:
    # Modules, docs tables and tags: test_registries.py, for every registry.
    for e in ENTRIES:
        assert e.meta.get("reference"), f"fusion '{e.name}' names no reference"
        assert e.cls.level in ("early", "intermediate", "late")


@pytest.mark.parametrize("name", [e.name for e in ENTRIES if e.cls.uses_tokens])
def test_padding_tokens_change_nothing(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.ones(4, 3, dtype=torch.bool)
    token_masks = {m: torch.ones(f.shape[:2], dtype=torch.bool) for m, f in feats.items()}
    token_masks["m2"][:, -1] = False
    token_masks["m1"][0] = False  # a present modality whose tokens are all padding
    out1 = fusion(feats, mask, token_masks=token_masks)
    noisy = {m: f.detach().clone() for m, f in feats.items()}
    noisy["m2"][:, -1] = 1e3
    noisy["m1"][0] = -1e3
    assert torch.allclose(out1, fusion(noisy, mask, token_masks=token_masks), atol=1e-5)
    assert torch.isfinite(out1).all()


AUX = [e.name for e in ENTRIES if e.cls.has_aux_loss]


def _aux(fusion, feats, mask, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # a variational fusion samples: the same noise for both calls
    fusion(feats, mask)
    return dict(fusion.aux_losses)


@pytest.mark.parametrize("name", AUX)
def test_aux_loss_in_training_only_finite_and_differentiable(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    mask = torch.tensor(
        [[True, False, True], [True, True, True], [False, True, False]] + [[True] * 3]
    )
    fusion.eval()
    assert _aux(fusion, feats, mask) == {} and fusion.aux_loss() is None
    fusion.train()
    losses = _aux(fusion, feats, mask)
    assert losses, f"fusion '{name}' is tagged aux_loss and set no auxiliary loss"
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    fusion.aux_loss().backward()
    assert any(
        t.grad is not None and t.grad.abs().sum() > 0 for f in feats.values() for t in _leaves(f)
    )


@pytest.mark.parametrize("name", AUX)
def test_aux_loss_ignores_masked_modalities(name: str) -> None:
    fusion, feats, _, _ = _setup(name)
    fusion.train()
    mask = torch.tensor(
        [[True, False, True], [False, True, True], [True, True, False], [True, False, False]]
    )
    before = _aux(fusion, feats, mask)
    noisy = {m: _apply(f, lambda t: t.detach().clone().requires_grad_()) for m, f in feats.items()}
    for j, m in enumerate(sorted(noisy)):
        for t in _leaves(noisy[m]):
            with torch.no_grad():
                t[~mask[:, j]] = 1e3
    after = _aux(fusion, noisy, mask)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.allclose(before[k], after[k], atol=1e-4), k
    # no gradient reaches a masked case's placeholder through the auxiliary loss either
    torch.stack(list(after.values())).sum().backward()
    for j, m in enumerate(sorted(noisy)):
        for t in _leaves(noisy[m]):
            assert t.grad is None or t.grad[~mask[:, j]].abs().sum() == 0, m
