"""Known answers of the film, bilinear, tensor and product_of_experts fusions."""

from __future__ import annotations

import pytest
import torch

from fusiondx.registry import create_fusion

# ------------------------------------------------------------------ product_of_experts


def test_poe_two_binary_experts_multiply_odds_and_ignore_missing() -> None:
    f = create_fusion("product_of_experts", in_dims={"a": 1, "b": 1, "c": 1}, out_dim=1)
    feats = {
        "a": torch.tensor([[0.8], [0.8]]),
        "b": torch.tensor([[0.8], [0.8]]),
        "c": torch.tensor([[0.01], [0.01]]),
    }
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = f(feats, mask)
    assert torch.allclose(out, torch.tensor([[16 / 17], [0.8]]), atol=1e-5)


def test_poe_opposite_binary_experts_cancel() -> None:
    f = create_fusion("product_of_experts", in_dims={"a": 2, "b": 2}, out_dim=2, task="multilabel")
    out = f(
        {"a": torch.tensor([[0.3, 0.9]]), "b": torch.tensor([[0.7, 0.5]])},
        torch.tensor([[True, True]]),
    )
    assert torch.allclose(out, torch.tensor([[0.5, 0.9]]), atol=1e-5)


def test_poe_multiclass_rows_sum_to_one_and_match_the_normalised_product() -> None:
    f = create_fusion("product_of_experts", in_dims={"a": 3, "b": 3}, out_dim=3, task="multiclass")
    a = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    b = torch.tensor([[0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    out = f({"a": a, "b": b}, torch.tensor([[True, True], [False, True]]))
    assert torch.allclose(out.sum(dim=-1), torch.ones(2), atol=1e-6)
    expected0 = a[0] * b[0] / (a[0] * b[0]).sum()
    assert torch.allclose(out[0], expected0, atol=1e-5)
    assert torch.allclose(out[1], b[1], atol=1e-5)  # a is missing: b alone


def test_poe_nothing_present_gives_fill_or_uniform() -> None:
    mask = torch.tensor([[False, False]])
    f = create_fusion("product_of_experts", in_dims={"a": 2, "b": 2}, out_dim=2, fill=0.3)
    assert torch.allclose(
        f({"a": torch.rand(1, 2), "b": torch.rand(1, 2)}, mask), torch.full((1, 2), 0.3)
    )
    g = create_fusion("product_of_experts", in_dims={"a": 4, "b": 4}, out_dim=4, task="multiclass")
    assert torch.allclose(
        g({"a": torch.rand(1, 4), "b": torch.rand(1, 4)}, mask), torch.full((1, 4), 0.25)
    )


def test_poe_rejects_unknown_task_and_keeps_task_in_config() -> None:
    with pytest.raises(ValueError):
        create_fusion("product_of_experts", in_dims={"a": 1}, out_dim=1, task="regression")
    f = create_fusion("product_of_experts", in_dims={"a": 3}, out_dim=3, task="multiclass")
    assert f.get_config()["task"] == "multiclass"


# ------------------------------------------------------------------ tensor


@pytest.mark.parametrize(
    ("n_mod", "max_size", "d"),
    [(1, 8192, 32), (2, 8192, 32), (3, 8192, 19), (6, 8192, 3), (6, 64, 1), (3, 1000, 9)],
)
def test_tensor_auto_factor_dim_respects_max_size(n_mod: int, max_size: int, d: int) -> None:
    dims = {f"m{i}": 3 for i in range(n_mod)}
    f = create_fusion("tensor", in_dims=dims, out_dim=4, max_size=max_size)
    assert f.factor_dim == d
    assert f.tensor_size == (d + 1) ** n_mod <= max_size
    assert (d + 2) ** n_mod > max_size or d in (1, 32)
    assert f.out.in_features == f.tensor_size


def test_tensor_six_modalities_output_and_explicit_factor_dim() -> None:
    dims = {f"m{i}": 5 for i in range(6)}
    f = create_fusion("tensor", in_dims=dims, out_dim=7)
    feats = {m: torch.randn(2, 5) for m in dims}
    out = f(feats, torch.ones(2, 6, dtype=torch.bool))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    g = create_fusion("tensor", in_dims=dims, out_dim=7, factor_dim=2)
    assert g.factor_dim == 2 and g.out.in_features == 3**6


def test_tensor_missing_modality_keeps_only_the_constant() -> None:
    torch.manual_seed(0)
    f = create_fusion("tensor", in_dims={"a": 3, "b": 3}, out_dim=4, factor_dim=2)
    a = torch.randn(1, 3)
    out = f({"a": a, "b": torch.randn(1, 3)}, torch.tensor([[True, False]]))
    # by hand: [h_a; 1] (x) [0, 0, 1] keeps only the entries paired with b's constant
    h_a = torch.cat([f.proj["a"](a), torch.ones(1, 1)], dim=-1)
    z = torch.einsum("bi,bj->bij", h_a, torch.tensor([[0.0, 0.0, 1.0]])).reshape(1, -1)
    assert torch.allclose(out, f.out(z), atol=1e-6)


# ------------------------------------------------------------------ film


def test_film_single_present_modality_is_the_plain_projection() -> None:
    torch.manual_seed(0)
    f = create_fusion("film", in_dims={"a": 4, "b": 6, "c": 5}, out_dim=8).eval()
    feats = {"a": torch.randn(2, 4), "b": torch.randn(2, 6), "c": torch.randn(2, 5)}
    out = f(feats, torch.tensor([[False, True, False], [False, True, False]]))
    assert torch.allclose(out, f.proj.proj["b"](feats["b"]), atol=1e-6)
    # one-modality configuration: no other modality to condition on
    g = create_fusion("film", in_dims={"a": 4}, out_dim=8)
    assert torch.allclose(
        g({"a": feats["a"]}, torch.ones(2, 1, dtype=torch.bool)),
        g.proj.proj["a"](feats["a"]),
        atol=1e-6,
    )


def test_film_two_modalities_modulate_each_other() -> None:
    torch.manual_seed(0)
    f = create_fusion("film", in_dims={"a": 4, "b": 4}, out_dim=8).eval()
    feats = {"a": torch.randn(1, 4), "b": torch.randn(1, 4)}
    out = f(feats, torch.ones(1, 2, dtype=torch.bool))
    ha, hb = f.proj.proj["a"](feats["a"]), f.proj.proj["b"](feats["b"])
    ga, ba = f.film["a"](hb).chunk(2, dim=-1)
    gb, bb = f.film["b"](ha).chunk(2, dim=-1)
    expected = 0.5 * ((ha * (1 + ga) + ba) + (hb * (1 + gb) + bb))
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, 0.5 * (ha + hb), atol=1e-3)


# ------------------------------------------------------------------ bilinear


def test_bilinear_single_present_modality_still_carries_it() -> None:
    torch.manual_seed(0)
    f = create_fusion("bilinear", in_dims={"a": 4, "b": 4, "c": 4}, out_dim=8).eval()
    mask = torch.tensor([[True, False, False]])
    b, c = torch.randn(1, 4), torch.randn(1, 4)
    out1 = f({"a": torch.randn(1, 4), "b": b, "c": c}, mask)
    out2 = f({"a": torch.randn(1, 4), "b": b, "c": c}, mask)
    assert not torch.allclose(out1, out2)
    # no pair is complete, so the pair part is zero
    a = torch.randn(1, 4)
    expected = f.out(torch.cat([torch.zeros(1, f.factor_dim), f.proj.proj["a"](a)], dim=-1))
    assert torch.allclose(f({"a": a, "b": b, "c": c}, mask), expected, atol=1e-6)


def test_bilinear_one_modality_configuration_and_pair_interaction() -> None:
    torch.manual_seed(0)
    g = create_fusion("bilinear", in_dims={"a": 4}, out_dim=8)
    assert g.pairs == []
    assert g({"a": torch.randn(3, 4)}, torch.ones(3, 1, dtype=torch.bool)).shape == (3, 8)
    f = create_fusion("bilinear", in_dims={"a": 4, "b": 4}, out_dim=8).eval()
    a, b = torch.randn(1, 4), torch.randn(1, 4)
    out = f({"a": a, "b": b}, torch.ones(1, 2, dtype=torch.bool))
    z = torch.tanh(f.u[0](a)) * torch.tanh(f.v[0](b))
    mean_h = 0.5 * (f.proj.proj["a"](a) + f.proj.proj["b"](b))
    assert torch.allclose(out, f.out(torch.cat([z, mean_h], dim=-1)), atol=1e-6)
