"""Spatial feature maps of the image encoders tagged ``maps`` (for localisation and segmentation)."""

from __future__ import annotations

import pytest
import torch
from specs import build_encoder, random_input, small_spec

import fusiondx.encoders  # noqa: F401
from fusiondx.encoders._base import Encoder
from fusiondx.registry import ENCODERS

MAPS = [e.name for e in ENCODERS.entries() if "maps" in e.tags]


def test_the_cnn_and_resnet_have_maps() -> None:
    assert {"image_cnn", "image_resnet"} <= set(MAPS)
    for name in MAPS:
        cls = ENCODERS.get(name).cls
        assert ENCODERS.get(name).meta["kind"] == "image", name
        assert cls.forward_maps is not Encoder.forward_maps, name
        assert cls.map_channels is not Encoder.map_channels, name


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", MAPS)
def test_maps_shapes_match_map_channels_and_the_embedding_is_forward(
    name: str, spatial_dims: int
) -> None:
    spec = small_spec("image", spatial_dims=spatial_dims)
    torch.manual_seed(0)
    enc = build_encoder(name, spec).eval()
    x = random_input(spec, 2)
    with torch.no_grad():
        maps, emb = enc.forward_maps(x)
        ref = enc(x)
    assert [m.shape[1] for m in maps] == enc.map_channels()
    assert len(maps) > 1, "several scales, for a decoder to go from coarse to fine"
    for m in maps:
        assert m.shape[0] == 2 and m.ndim == 2 + spatial_dims and torch.isfinite(m).all()
    sizes = [m.shape[2:] for m in maps]
    for fine, coarse in zip(sizes, sizes[1:], strict=False):  # shallow (fine) to deep (coarse)
        assert all(c <= f for f, c in zip(fine, coarse, strict=True)) and coarse != fine
    assert all(s < i for s, i in zip(sizes[0], spec.image_size, strict=True))
    torch.testing.assert_close(emb, ref, atol=0, rtol=0)  # the same pass as forward()


@pytest.mark.parametrize("name", MAPS)
def test_gradients_reach_the_encoder_through_the_maps(name: str) -> None:
    spec = small_spec("image")
    enc = build_encoder(name, spec).train()
    maps, emb = enc.forward_maps(random_input(spec, 2))
    (maps[0].square().mean() + emb.square().mean()).backward()
    first = next(p for p in enc.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("name,kind", [("vit", "image"), ("mlp", "tabular")])
def test_encoders_without_maps_say_which_have_them(name: str, kind: str) -> None:
    if name not in ENCODERS:
        pytest.skip(f"no {name} encoder")
    assert "maps" not in ENCODERS.get(name).tags
    enc = build_encoder(name, small_spec(kind))
    for call in (lambda: enc.forward_maps(random_input(small_spec(kind), 1)), enc.map_channels):
        # the message names the encoder (by its registered name) and those that have maps
        with pytest.raises(
            NotImplementedError, match=f"'{ENCODERS.get(name).name}'.*'maps'.*cnn.*resnet"
        ):
            call()
