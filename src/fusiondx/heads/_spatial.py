"""Helpers shared by the heads that read an image encoder's feature maps (not registered)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.errors import ConfigError
from fusiondx.heads._base import HeadContext

CONDITIONS = ("film", "none")
CONV = {2: nn.Conv2d, 3: nn.Conv3d}


def check_spatial_options(
    owner: str,
    *,
    image: str,
    map_channels: Sequence[int],
    spatial_dims: int,
    condition: str,
    allowed_dims: Sequence[int] = (2, 3),
) -> list[int]:
    """Raise a ConfigError for options a spatial head cannot work with; the map widths as ints."""
    if spatial_dims not in allowed_dims:
        dims = " or ".join(f"{d}D" for d in allowed_dims)
        raise ConfigError(
            f"head '{owner}' works on {dims} images, not spatial_dims={spatial_dims}",
            fix=(
                f"give the '{owner}' task a {dims} image modality"
                + (", or use the segmentation head for volumes" if owner == "localization" else "")
            ),
        )
    if condition not in CONDITIONS:
        raise ConfigError(
            f"head '{owner}' has no condition {condition!r}",
            fix=f"use one of: {', '.join(CONDITIONS)}",
        )
    channels = [int(c) for c in map_channels]
    if not channels or any(c <= 0 for c in channels):
        raise ConfigError(
            f"head '{owner}' needs the feature-map widths of image '{image}', got {channels}",
            fix="use an image encoder tagged 'maps' (see `fusiondx list encoders`)",
        )
    return channels


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups: independent of the batch, so one case predicts as in a batch."""
    groups = max(g for g in range(1, 9) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): per-channel scale and shift from a vector.

    ``x * (1 + gamma(c)) + beta(c)``; the projection starts at zero, so an untrained head begins
    unconditioned and the context is added as training finds it useful.

    Args:
        cond_dim: width of the conditioning vector (the fused representation).
        channels: channels of the modulated feature map.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).chunk(2, dim=1)
        shape = (*gamma.shape, *([1] * (x.ndim - 2)))  # broadcast over the spatial dimensions
        return x * (1 + gamma.reshape(shape)) + beta.reshape(shape)


def image_maps(
    ctx: HeadContext | None, image: str, channels: Sequence[int], owner: str
) -> list[torch.Tensor]:
    """The image encoder's maps from the context, checked against the widths the head was built for."""
    if ctx is None:
        raise ValueError(
            f"head '{owner}' reads the feature maps of image '{image}': pass a HeadContext"
        )
    maps = ctx.maps(image)
    got = [m.shape[1] for m in maps]
    if got != list(channels):
        raise ValueError(
            f"head '{owner}' was built for maps of {list(channels)} channels, the encoder of "
            f"'{image}' gives {got}: build it with map_channels=encoder.map_channels()"
        )
    return maps


def upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a (B, C, *S) map to ``size`` (bilinear or trilinear); a no-op at that size already."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)
