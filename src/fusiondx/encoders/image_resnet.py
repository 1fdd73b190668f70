"""ResNet image encoder built on MONAI's ResNet, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._image import check_spatial_dims, feature_map_tokens
from fusiondx.errors import ConfigError
from fusiondx.registry import register_encoder

_LAYERS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


@register_encoder("image_resnet", aliases=("resnet",))
class ResNetEncoder(Encoder):
    """ResNet-10/18/34 with basic blocks (He et al., 2016) from MONAI, slim by default, 2D or 3D.

    The network is ``monai.networks.nets.ResNet`` (the 3D variant follows Hara et al., 2018)
    without its classifier; ``block_inplanes`` and ``widen_factor`` set the widths, narrow by
    default so that it trains on a CPU. The embedding is the global average of the last stage
    projected to ``out_dim``; the tokens are that projection at every position of the last stage.
    The maps are the outputs of the four stages (1/2 to 1/16 of the input size with the default
    ``conv1_stride=1``, which the max-pooling of the stem halves once).

    Args:
        in_channels: image channels.
        spatial_dims: 2 for (C, H, W) images, 3 for (C, D, H, W) volumes.
        out_dim: embedding width.
        dropout: dropout before the projection.
        depth: 10, 18 or 34 layers.
        block_inplanes: channels of the four stages (before ``widen_factor``).
        widen_factor: multiplies every stage width.
        conv1_stride: stride of the first 7x7 convolution; 1 (MONAI's default) keeps a 4x4 final
            map on 64x64 images, 2 (ImageNet ResNets) quarters the cost for large images.
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
        depth: int = 10,
        block_inplanes: Sequence[int] = (16, 32, 64, 128),
        widen_factor: float = 1.0,
        conv1_stride: int = 1,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_resnet", self.image_dims)
        if depth not in _LAYERS:
            raise ConfigError(
                f"resnet depth {depth} is not available",
                fix=f"use one of: {', '.join(map(str, _LAYERS))}",
            )
        if len(block_inplanes) != 4:
            raise ConfigError(
                f"resnet block_inplanes needs 4 widths, got {list(block_inplanes)}",
                fix="give one width per stage, e.g. [16, 32, 64, 128]",
            )
        from monai.networks.nets import ResNet

        self.net = ResNet(
            block="basic",
            layers=_LAYERS[depth],
            block_inplanes=list(block_inplanes),
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_stride=conv1_stride,
            widen_factor=widen_factor,
            feed_forward=False,
        )
        width = int(block_inplanes[3] * widen_factor)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(width, out_dim)
        self.out_dim = out_dim
        self._stage_widths = [int(w * widen_factor) for w in block_inplanes[:3]]
        self._map_widths = [*self._stage_widths, width]

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        # MONAI's forward pools and flattens; tokens and levels need the maps before the pooling.
        n = self.net
        x = n.act(n.bn1(n.conv1(x)))
        if not n.no_max_pool:
            x = n.maxpool(x)
        maps = []
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = layer(x)
            maps.append(x)
        return maps  # 4 x (B, C_i, *S_i)

    def _feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._stages(x)[-1]

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps, embedding = self.forward_maps(x)
        return [*(m.flatten(2).mean(dim=2) for m in maps[:-1]), embedding]

    def level_dims(self) -> list[int]:
        return [*self._stage_widths, self.out_dim]

    def forward_maps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = self._stages(x)
        return maps, self.proj(self.dropout(maps[-1].flatten(2).mean(dim=2)))

    def map_channels(self) -> list[int]:
        return list(self._map_widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._feature_map(x).flatten(2).mean(dim=2)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(feature_map_tokens(self._feature_map(x))))  # (B, T, D)
