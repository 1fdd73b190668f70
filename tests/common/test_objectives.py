"""The contract every registered pretraining objective keeps, and each one's own equation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fusiondx._nn import clip_scale, info_nce
from fusiondx.objectives._targets import lowlevel_target, target_width
from fusiondx.registry import OBJECTIVES

NAMES = OBJECTIVES.names()
SPECS = {
    "cxr": {"kind": "image", "in_channels": 1, "spatial_dims": 2},
    "ecg": {"kind": "signal", "in_channels": 3},
    "labs": {"kind": "tabular", "n_numeric": 2, "cardinalities": [3]},
    "note": {"kind": "text"},
}
DIMS = {"cxr": 12, "ecg": 10, "labs": 6, "note": 8}


def _batch(b: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "cxr": torch.randn(b, 1, 16, 16, generator=g),
        "ecg": torch.randn(b, 3, 64, generator=g),
        "labs": {
            "numeric": torch.randn(b, 2, generator=g),
            "numeric_missing": (torch.rand(b, 2, generator=g) < 0.3).float(),
            "categorical": torch.randint(0, 3, (b, 1), generator=g),
        },
        "note": torch.randint(0, 50, (b, 7), generator=g),
    }
    emb = {m: torch.randn(b, d, generator=g, requires_grad=True) for m, d in DIMS.items()}
    return emb, inputs


def _make(name: str):
    torch.manual_seed(0)
    return OBJECTIVES.create(name, dims=DIMS, specs=SPECS)


MASK = torch.tensor(
    [
        [True, True, True, True],
        [True, False, True, False],
        [False, True, True, True],
        [True, True, False, False],
        [True, True, True, False],
        [False, False, False, True],
    ]
)


@pytest.mark.parametrize("name", NAMES)
def test_finite_scalar_with_gradient(name: str) -> None:
    obj = _make(name)
    emb, inputs = _batch()
    loss = obj(emb, MASK, inputs)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert any(e.grad is not None and e.grad.abs().sum() > 0 for e in emb.values())


@pytest.mark.parametrize("name", NAMES)
def test_masked_modalities_change_nothing_and_get_no_gradient(name: str) -> None:
    obj = _make(name)
    emb, inputs = _batch()
    torch.manual_seed(1)
    before = obj(emb, MASK, inputs)
    noisy = {m: e.detach().clone() for m, e in emb.items()}
    for j, m in enumerate(sorted(noisy)):
        noisy[m][~MASK[:, j]] = 1e4
        noisy[m].requires_grad_()
    torch.manual_seed(1)
    after = obj(noisy, MASK, inputs)
    assert torch.allclose(before, after, atol=1e-5)
    after.backward()
    for j, m in enumerate(sorted(noisy)):
        g = noisy[m].grad
        assert g is None or g[~MASK[:, j]].abs().sum() == 0, m


@pytest.mark.parametrize("name", NAMES)
def test_nothing_to_learn_is_a_zero_in_the_graph(name: str) -> None:
    obj = _make(name)
    emb, inputs = _batch()
    loss = obj(emb, torch.zeros_like(MASK), inputs)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_reference(name: str) -> None:
    obj = _make(name)
    clone = type(obj)(**obj.get_config())
    clone.load_state_dict(obj.state_dict(), strict=True)
    emb, inputs = _batch()
    torch.manual_seed(3)
    a = obj(emb, MASK, inputs)
    torch.manual_seed(3)
    assert torch.allclose(a, clone(emb, MASK, inputs))
    assert OBJECTIVES.get(name).meta.get("reference")


def test_info_nce_is_the_clip_loss_by_hand() -> None:
    a = F.normalize(torch.randn(3, 4), dim=-1)
    b = F.normalize(torch.randn(3, 4), dim=-1)
    scale = clip_scale(torch.tensor(math.log(10.0)))
    sim = 10.0 * a @ b.T
    by_hand = (
        -(
            sum(torch.log_softmax(sim[i], 0)[i] for i in range(3)) / 3
            + sum(torch.log_softmax(sim[:, i], 0)[i] for i in range(3)) / 3
        )
        / 2
    )
    assert torch.allclose(info_nce(a, b, scale), by_hand)
    # the temperature is capped at 1/100 as in CLIP
    assert float(clip_scale(torch.tensor(9.0))) == 100.0


def test_contrastive_is_the_mean_over_pairs_present_together() -> None:
    obj = _make("contrastive")
    emb, inputs = _batch()
    pairs = []
    for i, a in enumerate(sorted(DIMS)):
        for j, b in enumerate(sorted(DIMS)):
            both = MASK[:, i] & MASK[:, j]
            if i < j and both.sum() >= 2:
                z = obj.project({a: emb[a][both], b: emb[b][both]})
                pairs.append(info_nce(z[a], z[b], clip_scale(obj.logit_scale)))
    assert torch.allclose(obj(emb, MASK, inputs), torch.stack(pairs).mean())


def test_contrastive_prefers_aligned_pairs() -> None:
    obj = _make("contrastive")
    emb, inputs = _batch()
    with torch.no_grad():
        for m in DIMS:
            obj.proj[m].weight.zero_()
            obj.proj[m].weight[:4, :4] = torch.eye(4)
    shared = torch.randn(6, 4)
    aligned = {m: torch.cat([shared, torch.zeros(6, d - 4)], 1) for m, d in DIMS.items()}
    shuffled = {m: v[torch.randperm(6)] for m, v in aligned.items()}
    full = torch.ones_like(MASK)
    assert obj(aligned, full, inputs) < obj(shuffled, full, inputs)


@pytest.mark.parametrize("modality", sorted(SPECS))
def test_lowlevel_target_width_matches(modality: str) -> None:
    _, inputs = _batch()
    t = lowlevel_target(SPECS[modality], inputs[modality], 32)
    assert t.shape == (6, target_width(SPECS[modality], 32)) and torch.isfinite(t).all()


def test_text_target_counts_tokens_not_padding() -> None:
    x = torch.tensor([[5, 5, 7, 0, 0]])
    t = lowlevel_target({"kind": "text"}, x, 16)
    assert torch.allclose(t[0, 5], torch.log1p(torch.tensor(2.0)))
    assert t[0, 0] == 0 and t.sum() > 0


def test_reconstruction_decoder_can_learn_its_target() -> None:
    obj = _make("reconstruction")
    emb, inputs = _batch()
    fixed = {m: e.detach() for m, e in emb.items()}
    opt = torch.optim.Adam(obj.parameters(), lr=1e-2)
    first = float(obj(fixed, MASK, inputs).detach())
    for _ in range(100):
        opt.zero_grad()
        loss = obj(fixed, MASK, inputs)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
