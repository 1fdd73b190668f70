"""DenseNet image encoder built on MONAI's DenseNet, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._image import check_spatial_dims, feature_map_tokens
from fusiondx.registry import register_encoder


@register_encoder("image_densenet", aliases=("densenet",))
class DenseNetEncoder(Encoder):
    """DenseNet (Huang et al., 2017) from MONAI with a small growth rate, 2D or 3D.

    The feature extractor of ``monai.networks.nets.DenseNet``; the default has three dense blocks
    of four layers, 16 initial features and growth rate 12 (the "DenseNet-BC" CIFAR scale), so it
    stays light. The embedding is the global average of the last feature map projected to
    ``out_dim``; the tokens are that projection at every position of the map.

    Args:
        in_channels: image channels.
        spatial_dims: 2 for (C, H, W) images, 3 for (C, D, H, W) volumes.
        out_dim: embedding width.
        dropout: dropout before the projection.
        init_features: channels after the stem convolution.
        growth_rate: channels each dense layer adds.
        block_config: dense layers in each block; each block after the first halves the
            resolution, so three blocks turn a 64x64 image into a 4x4 map.
        bn_size: bottleneck width multiplier of each dense layer.
        dense_dropout: dropout inside the dense layers.
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
        init_features: int = 16,
        growth_rate: int = 12,
        block_config: Sequence[int] = (4, 4, 4),
        bn_size: int = 4,
        dense_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_densenet", self.image_dims)
        from monai.networks.nets import DenseNet

        net = DenseNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=1,
            init_features=init_features,
            growth_rate=growth_rate,
            block_config=tuple(block_config),
            bn_size=bn_size,
            dropout_prob=dense_dropout,
        )
        # Only the feature extractor is kept: MONAI's classifier would be an unused parameter.
        self.features = net.features
        # MONAI builds class_layers as an nn.Sequential, whose children are typed as Modules.
        width = cast(nn.Linear, net.class_layers.out).in_features
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(width, out_dim)
        self.out_dim = out_dim

    def _feature_map(self, x: torch.Tensor) -> torch.Tensor:
        # MONAI's features end with a norm; its classifier applies the ReLU that we apply here.
        return self.act(self.features(x))  # (B, C, *S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._feature_map(x).flatten(2).mean(dim=2)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(feature_map_tokens(self._feature_map(x))))  # (B, T, D)
