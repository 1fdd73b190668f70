"""HEALNet: one latent array attends to each present modality in turn, with blocks shared across
the fusion steps; an absent modality's block is skipped."""

from __future__ import annotations

import torch

from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 7, "c": 6}
MASK = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])


def _setup(**options):
    torch.manual_seed(0)
    options = {"d_model": 8, "num_heads": 2, "num_latents": 3, **options}
    f = create_fusion("healnet", in_dims=DIMS, out_dim=4, **options).eval()
    feats = {m: torch.randn(3, d) for m, d in DIMS.items()}
    return f, feats


def test_latents_follow_the_iterative_cross_attention_by_hand() -> None:
    f, feats = _setup(depth=2, tokens_per_modality=2)
    lat = f.latents(feats, MASK)
    # case 0 has a and c: per step, a's block, then c's block, then the latent self-attention
    x = f.latent.unsqueeze(0)
    tok = {m: f.tokenize[m](feats[m][:1]).view(1, 2, 8) for m in "ac"}
    for _ in range(2):
        x = f.cross["c"](f.cross["a"](x, tok["a"]), tok["c"])
        x = f.self_attn(x)
    assert torch.allclose(lat[0], x[0], atol=1e-5)


def test_an_absent_modality_block_plays_no_part() -> None:
    f, feats = _setup()
    before = f(feats, MASK)
    with torch.no_grad():
        for p in f.cross["b"].parameters():
            p.add_(0.3)
    after = f(feats, MASK)
    assert torch.allclose(before[0], after[0])  # case 0 misses b
    assert not torch.allclose(before[1], after[1])
    assert not torch.allclose(before[2], after[2])


def test_blocks_are_shared_across_steps_so_depth_adds_iterations_not_weights() -> None:
    f1, feats = _setup(depth=1)
    f3, _ = _setup(depth=3)
    n1 = sum(p.numel() for p in f1.parameters())
    assert n1 == sum(p.numel() for p in f3.parameters())
    f3.load_state_dict(f1.state_dict())
    assert not torch.allclose(f1(feats, MASK), f3(feats, MASK))


def test_each_case_has_its_own_latents() -> None:
    f, feats = _setup()
    out = f(feats, MASK)
    moved = {m: x.clone() for m, x in feats.items()}
    moved["a"][2] += 2.0
    out2 = f(moved, MASK)
    assert torch.allclose(out[:2], out2[:2]) and not torch.allclose(out[2], out2[2])
