"""Helpers shared by the image encoders (not registered)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fusiondx.errors import ConfigError


def check_spatial_dims(spatial_dims: int, owner: str, allowed: Sequence[int] = (2, 3)) -> None:
    """Raise a ConfigError when an image encoder cannot handle ``spatial_dims``."""
    if spatial_dims not in allowed:
        dims = " or ".join(f"{d}D" for d in allowed)
        raise ConfigError(
            f"image encoder '{owner}' works on {dims} images, not spatial_dims={spatial_dims}",
            fix="pick another image encoder (see `fusiondx list encoders`) or resample the images",
        )


def spatial_size(image_size: Sequence[int], spatial_dims: int, owner: str) -> tuple[int, ...]:
    """The spatial part of ``image_size``: (H, W) or (D, H, W)."""
    size = tuple(int(s) for s in image_size)
    if len(size) != spatial_dims or any(s <= 0 for s in size):
        raise ConfigError(
            f"image encoder '{owner}' needs image_size with {spatial_dims} positive spatial sizes, "
            f"got {list(size)}",
            fix="resize the images to a fixed size in the data config (image_size)",
        )
    return size


def feature_map_tokens(fmap: torch.Tensor) -> torch.Tensor:
    """(B, C, *S) feature map -> (B, prod(S), C) tokens, one per spatial position."""
    return fmap.flatten(2).transpose(1, 2)
