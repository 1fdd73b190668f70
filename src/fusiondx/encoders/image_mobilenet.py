"""MobileNetV2-style image encoder: depthwise-separable inverted residual blocks."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._image import check_spatial_dims, feature_map_tokens
from fusiondx.errors import ConfigError
from fusiondx.registry import register_encoder

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}

# (expansion, channels, repeats, stride of the first repeat), a shortened MobileNetV2 table.
_STAGES = ((1, 16, 1, 1), (None, 24, 2, 2), (None, 32, 2, 2), (None, 64, 2, 2), (None, 96, 1, 1))


def _scaled(c: int, mult: float) -> int:
    return max(8, int(round(c * mult / 8)) * 8)


class _ConvBNAct(nn.Sequential):
    def __init__(
        self,
        dims: int,
        c_in: int,
        c_out: int,
        k: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            _CONV[dims](c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),
            _NORM[dims](c_out),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class _InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear bottleneck (1x1), residual when shapes match."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_ConvBNAct(dims, c_in, hidden))
        layers += [
            _ConvBNAct(dims, hidden, hidden, k=3, stride=stride, groups=hidden),
            _ConvBNAct(dims, hidden, c_out, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


@register_encoder("image_mobilenet", aliases=("mobilenet",))
class MobileNetEncoder(Encoder):
    """MobileNetV2-style CNN (Sandler et al., 2018): inverted residuals, depthwise convolutions.

    A stride-2 stem (``stem_stride``), then inverted residual blocks (1x1 expansion, depthwise 3x3, linear 1x1
    bottleneck) over a shortened MobileNetV2 stage table, a 1x1 head convolution and global
    average pooling. Depthwise-separable convolutions make it the cheapest CNN per parameter.
    Works in 2D; 3D uses depthwise 3x3x3 convolutions.

    Args:
        in_channels: image channels.
        spatial_dims: 2 for (C, H, W) images, 3 for (C, D, H, W) volumes.
        out_dim: embedding width.
        dropout: dropout before the projection.
        width_mult: multiplies every stage width (rounded to multiples of 8).
        expansion: expansion ratio of the inverted residual blocks (6 in MobileNetV2).
        head_channels: channels of the final 1x1 convolution.
        stem_stride: stride of the first convolution: 2 as in MobileNetV2 (made for 224-pixel
            photographs), 1 for small images whose findings are a pixel or two wide, where an
            early halving throws them away (4x the FLOPs of the blocks that follow).
    """

    kind = "image"
    image_dims = (2, 3)

    def __init__(
        self,
        *,
        in_channels: int,
        spatial_dims: int = 2,
        out_dim: int = 128,
        dropout: float = 0.1,
        width_mult: float = 1.0,
        expansion: int = 4,
        head_channels: int = 256,
        stem_stride: int = 2,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_mobilenet", self.image_dims)
        if stem_stride not in (1, 2):
            raise ConfigError(
                f"image_mobilenet stem_stride {stem_stride} is not available",
                fix="use 2 (MobileNetV2's stem) or 1 (small images: no early downsampling)",
            )
        c = _scaled(16, width_mult)
        layers: list[nn.Module] = [
            _ConvBNAct(spatial_dims, in_channels, c, k=3, stride=stem_stride)
        ]
        for t, ch, n, s in _STAGES:
            c_out = _scaled(ch, width_mult)
            for i in range(n):
                layers.append(
                    _InvertedResidual(spatial_dims, c, c_out, s if i == 0 else 1, t or expansion)
                )
                c = c_out
        layers.append(_ConvBNAct(spatial_dims, c, head_channels))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(head_channels, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self.features(x).flatten(2).mean(dim=2)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(feature_map_tokens(self.features(x))))  # (B, T, D)
