"""Behaviour of the three starting fusions beyond the common contract."""

from __future__ import annotations

import torch

from fusiondx.registry import create_fusion


def test_late_average_ignores_missing_and_renormalises() -> None:
    f = create_fusion("late_average", in_dims={"a": 1, "b": 1, "c": 1}, out_dim=1)
    feats = {
        "a": torch.tensor([[0.9], [0.9]]),
        "b": torch.tensor([[0.1], [0.1]]),
        "c": torch.tensor([[0.2], [0.2]]),
    }
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = f(feats, mask)
    assert torch.allclose(out, torch.tensor([[0.5], [0.9]]))


def test_late_average_with_nothing_present_returns_fill() -> None:
    f = create_fusion("late_average", in_dims={"a": 2, "b": 2}, out_dim=2, fill=0.5)
    out = f({"a": torch.rand(1, 2), "b": torch.rand(1, 2)}, torch.tensor([[False, False]]))
    assert torch.equal(out, torch.full((1, 2), 0.5))


def test_concat_uses_learned_absent_vector_not_the_placeholder() -> None:
    torch.manual_seed(0)
    f = create_fusion("concat", in_dims={"a": 4, "b": 4}, out_dim=8).eval()
    a = torch.randn(2, 4)
    mask = torch.tensor([[True, False], [True, False]])
    out1 = f({"a": a, "b": torch.zeros(2, 4)}, mask)
    out2 = f({"a": a, "b": torch.randn(2, 4) * 100}, mask)
    assert torch.allclose(out1, out2)
    # ... and the absent vector is a parameter that training can move.
    with torch.no_grad():
        f.absent.absent[1].add_(1.0)
    assert not torch.allclose(out1, f({"a": a, "b": torch.zeros(2, 4)}, mask))
