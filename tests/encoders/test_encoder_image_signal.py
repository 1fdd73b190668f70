"""Image and signal encoders: option checks and the embedding/token relation."""

from __future__ import annotations

import pytest
import torch
from specs import build_encoder, random_input, small_spec

import fusiondx.encoders  # noqa: F401
from fusiondx.errors import ConfigError
from fusiondx.types import ModalitySpec

IMAGE = small_spec("image")
SIGNAL = small_spec("signal")


@pytest.mark.parametrize(
    "name,spec",
    [
        ("cnn", IMAGE),
        ("resnet", IMAGE),
        ("densenet", IMAGE),
        ("mobilenet", IMAGE),
        ("cnn1d", SIGNAL),
    ],
)
def test_embedding_is_the_mean_of_the_tokens(name: str, spec: ModalitySpec) -> None:
    # A shared projection after global average pooling: fusions see consistent views.
    enc = build_encoder(name, spec).eval()
    x = random_input(spec, 2)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc.forward_tokens(x).mean(dim=1), atol=1e-5, rtol=1e-4)


def test_vit_checks_the_image_size() -> None:
    enc = build_encoder("vit", IMAGE)
    assert enc.forward_tokens(random_input(IMAGE, 1)).shape == (1, 16, 10)  # (32 / 8) ** 2 patches
    with pytest.raises(ConfigError, match="image_size"):
        enc(torch.zeros(1, 2, 24, 24))
    with pytest.raises(ConfigError, match="patch_size"):
        build_encoder("vit", IMAGE, patch_size=64)


@pytest.mark.parametrize(
    "name", ["cnn", "resnet", "densenet", "vit", "mobilenet", "lowlevel_image"]
)
def test_unsupported_spatial_dims(name: str) -> None:
    spec = ModalitySpec("x", "image", in_channels=1, spatial_dims=1, image_size=(32,))
    with pytest.raises(ConfigError, match="spatial_dims"):
        build_encoder(name, spec)


def test_resnet_depth_option() -> None:
    shallow = build_encoder("resnet", IMAGE)
    deeper = build_encoder("resnet", IMAGE, depth=18)
    assert sum(p.numel() for p in deeper.parameters()) > sum(
        p.numel() for p in shallow.parameters()
    )
    with pytest.raises(ConfigError, match="depth"):
        build_encoder("resnet", IMAGE, depth=50)


def test_recurrent_signal_stem_shortens_by_downsample() -> None:
    enc = build_encoder("gru", SIGNAL).eval()  # 128 samples / 8
    assert enc.forward_tokens(random_input(SIGNAL, 2)).shape == (2, 16, 10)
    with pytest.raises(ConfigError, match="power of two"):
        build_encoder("lstm", SIGNAL, downsample=6)
    with pytest.raises(ConfigError, match="pooling"):
        build_encoder("lstm", SIGNAL, pooling="max")


def test_signal_transformer_pooling_and_other_lengths() -> None:
    enc = build_encoder("signal_transformer", SIGNAL, pooling="cls").eval()
    x = torch.randn(2, 2, 200)  # longer than the fitted length: positions are interpolated
    with torch.no_grad():
        assert enc(x).shape == (2, 10)
        assert enc.forward_tokens(x).shape == (2, 200 // 20, 10)
    assert build_encoder("signal_transformer", SIGNAL).cls_token is None


def test_mobilenet_stem_stride_keeps_twice_the_resolution() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    x = random_input(IMAGE, 1)
    maps, flops = {}, {}
    for stride in (2, 1):
        enc = build_encoder("mobilenet", IMAGE, stem_stride=stride).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            maps[stride] = enc.forward_tokens(x).shape[1]
        flops[stride] = counter.get_total_flops()
    assert maps[1] == 4 * maps[2]  # half the downsampling per side: four times the positions
    assert 3 * flops[2] < flops[1] < 5 * flops[2]
    with pytest.raises(ConfigError, match="stem_stride"):
        build_encoder("mobilenet", IMAGE, stem_stride=3)
