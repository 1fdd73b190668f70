"""ShaSpec: a missing modality's feature comes from the present shared features; its two
auxiliary losses match their definitions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 7, "c": 6}


def _setup(**options):
    torch.manual_seed(0)
    f = create_fusion("shaspec", in_dims=DIMS, out_dim=4, dropout=0.0, **options)
    feats = {m: torch.randn(3, d) for m, d in DIMS.items()}
    mask = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    return f, feats, mask


def test_shared_encoder_is_one_network_and_a_missing_feature_is_the_present_shared_mean() -> None:
    f, feats, mask = _setup()
    filled, shared, specific = f.complete(feats, mask)
    enc = f.encoders
    for j, m in enumerate(sorted(DIMS)):
        rows = mask[:, j]  # absent rows are computed on zeros, never on the placeholder
        # the same shared MLP after each modality's adapter
        own = enc.shared(enc.adapt[m](feats[m]))
        assert torch.allclose(shared[rows, j], own[rows], atol=1e-6)
        assert torch.allclose(specific[rows, j], enc.specific[m](feats[m])[rows], atol=1e-6)
    # case 0 misses b: the mean of a's and c's shared features
    assert torch.allclose(filled[0, 1], (shared[0, 0] + shared[0, 2]) / 2, atol=1e-6)
    # case 1 has only b: both missing slots are b's shared feature
    assert torch.allclose(filled[1, 0], shared[1, 1], atol=1e-6)
    assert torch.allclose(filled[1, 2], shared[1, 1], atol=1e-6)
    # a present modality: residual fusion of its shared and specific features
    expected = shared[2, 1] + f.residual(torch.cat([shared[2, 1], specific[2, 1]]))
    assert torch.allclose(filled[2, 1], expected, atol=1e-6)


def test_a_missing_modality_specific_encoder_plays_no_part() -> None:
    f, feats, mask = _setup()
    f.eval()
    before = f(feats, mask)
    with torch.no_grad():
        for p in f.encoders.specific["b"].parameters():
            p.add_(0.5)
    after = f(feats, mask)
    assert torch.allclose(before[0], after[0])  # case 0 misses b
    assert not torch.allclose(before[1], after[1])  # case 1 has b


def test_domain_and_alignment_losses_match_their_equations() -> None:
    f, feats, mask = _setup(domain_weight=0.3, align_weight=2.0)
    f.train()
    f(feats, mask)
    losses = dict(f.aux_losses)
    _, shared, specific = f.complete(feats, mask)
    ce, l1 = [], []
    for b in range(3):
        present = [j for j in range(3) if mask[b, j]]
        for j in present:
            logits = f.domain(specific[b, j]).unsqueeze(0)
            ce.append(F.cross_entropy(logits, torch.tensor([j])))
        for x in present:
            for y in present:
                if x < y:
                    l1.append((shared[b, x] - shared[b, y]).abs().mean())
    assert len(ce) == 6 and len(l1) == 4  # 2+1+3 present modalities, 1+0+3 present pairs
    assert torch.allclose(losses["domain"], 0.3 * torch.stack(ce).mean(), atol=1e-6)
    assert torch.allclose(losses["align"], 2.0 * torch.stack(l1).mean(), atol=1e-6)


def test_alignment_pulls_shared_features_together() -> None:
    f, feats, mask = _setup(domain_weight=0.0, align_weight=1.0)
    f.train()
    opt = torch.optim.SGD(f.encoders.parameters(), lr=0.5)
    f(feats, mask)
    start = f.aux_losses["align"].item()
    for _ in range(20):
        opt.zero_grad()
        f(feats, mask)
        f.aux_loss().backward()
        opt.step()
    assert f.aux_losses["align"].item() < 0.5 * start
