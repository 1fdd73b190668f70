"""Vision Transformer image encoder: MONAI patch embedding + a transformer encoder + CLS token."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fusiondx._nn import check_heads, transformer_encoder
from fusiondx.encoders._base import Encoder, transformer_layers
from fusiondx.encoders._image import check_spatial_dims, spatial_size
from fusiondx.errors import ConfigError
from fusiondx.registry import register_encoder


@register_encoder("image_vit", aliases=("vit",))
class ViTEncoder(Encoder):
    """Vision Transformer (Dosovitskiy et al., 2021): patch tokens + CLS token, 2D or 3D.

    Non-overlapping patches are embedded with MONAI's ``PatchEmbeddingBlock`` (convolution and
    learned positions), a CLS token is prepended and a pre-norm ``nn.TransformerEncoder`` mixes
    them. The embedding is the CLS output projected to ``out_dim``; the tokens are the patch
    outputs. The positions are learned for one ``image_size``, so inputs must have that size.

    Args:
        in_channels: image channels.
        image_size: spatial size, (H, W) or (D, H, W).
        spatial_dims: 2 or 3.
        out_dim: embedding width.
        dropout: dropout in the transformer and before the projection.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        patch_size: side of the square (cubic) patches.
        hidden_size: token width inside the transformer.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``hidden_size``).
        mlp_dim: hidden width of each layer's feed-forward block.
    """

    kind = "image"
    image_dims = (2, 3)

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: Sequence[int],
        spatial_dims: int = 2,
        out_dim: int = 128,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        patch_size: int = 8,
        hidden_size: int = 64,
        num_layers: int = 4,
        num_heads: int = 4,
        mlp_dim: int = 128,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_vit", self.image_dims)
        size = spatial_size(image_size, spatial_dims, "image_vit")
        if patch_size > min(size):
            raise ConfigError(
                f"image_vit patch_size {patch_size} is larger than the image ({list(size)})",
                fix="use a smaller patch_size or larger images",
            )
        check_heads(hidden_size, num_heads, owner="image_vit", width_name="hidden_size")
        from monai.networks.blocks import PatchEmbeddingBlock

        self.image_size = size
        self.patch_embed = PatchEmbeddingBlock(
            in_channels=in_channels,
            img_size=size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_heads=num_heads,
            dropout_rate=dropout,
            spatial_dims=spatial_dims,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.transformer = transformer_encoder(
            hidden_size,
            num_heads,
            num_layers,
            dim_feedforward=mlp_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            owner="image_vit",
            width_name="hidden_size",
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, out_dim)
        self.out_dim = out_dim

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1 + P, hidden), before the layers
        if tuple(x.shape[2:]) != self.image_size:
            raise ConfigError(
                f"image_vit was built for images of size {list(self.image_size)}, got {list(x.shape[2:])}",
                fix="set image_size to the size the data pipeline produces",
            )
        patches = self.patch_embed(x)  # (B, P, hidden)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1 + P, hidden)
        return self.transformer(self._tokens(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._encode(x)[:, 0]))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._encode(x)[:, 1:]))  # (B, P, D)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = transformer_layers(self.transformer, self._tokens(x))
        return [h[:, 0] for h in outs[:-1]] + [self.proj(self.dropout(outs[-1][:, 0]))]

    def level_dims(self) -> list[int]:
        n = len(self.transformer.layers)
        return [self.proj.in_features] * (n - 1) + [self.out_dim]
