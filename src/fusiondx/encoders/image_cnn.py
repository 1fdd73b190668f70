"""A small plain CNN for 2D or 3D images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._image import check_spatial_dims, feature_map_tokens
from fusiondx.registry import register_encoder

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


@register_encoder("image_cnn", aliases=("cnn",))
class CNNEncoder(Encoder):
    """Small CNN (conv-BN-ReLU stages, global average pooling), 2D or 3D; a cheap image baseline.

    Each stage halves the resolution with a strided 3x3 convolution and refines with a second one,
    the VGG recipe (Simonyan & Zisserman, 2015) with batch normalisation (Ioffe & Szegedy, 2015).
    The embedding is the global average of the last feature map projected to ``out_dim``; the
    tokens are the same projection applied at every position of that map. The maps are the
    output of every stage (1/2, 1/4, ... of the input size, ``widths`` channels).

    Args:
        in_channels: image channels.
        spatial_dims: 2 for (C, H, W) images, 3 for (C, D, H, W) volumes.
        out_dim: embedding width.
        dropout: dropout before the projection.
        widths: channels of each stage; one halving of the resolution per stage.
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
        widths: Sequence[int] = (16, 32, 64, 128),
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_cnn", self.image_dims)
        conv, norm = _CONV[spatial_dims], _NORM[spatial_dims]
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [
                conv(c, w, 3, stride=2, padding=1, bias=False),
                norm(w),
                nn.ReLU(inplace=True),
                conv(w, w, 3, padding=1, bias=False),
                norm(w),
                nn.ReLU(inplace=True),
            ]
            c = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(c, out_dim)
        self.out_dim = out_dim
        self._widths = list(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.features(x)  # (B, C', *S)
        return self.proj(self.dropout(fmap.flatten(2).mean(dim=2)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(feature_map_tokens(self.features(x))))  # (B, T, D)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        # One level per stage: the pooled map after each stage, the last one projected.
        maps, embedding = self.forward_maps(x)
        return [*(m.flatten(2).mean(dim=2) for m in maps[:-1]), embedding]

    def level_dims(self) -> list[int]:
        return [*self._widths[:-1], self.out_dim]

    def forward_maps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = []
        for i, module in enumerate(self.features):
            x = module(x)
            if i % 6 == 5:  # the end of a stage (conv-BN-ReLU twice)
                maps.append(x)
        return maps, self.proj(self.dropout(x.flatten(2).mean(dim=2)))

    def map_channels(self) -> list[int]:
        return list(self._widths)
