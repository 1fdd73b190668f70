"""Transformer signal encoder: convolutional patch stem, learned positions, transformer encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import check_heads, transformer_encoder
from fusiondx.encoders._base import Encoder, transformer_layers
from fusiondx.encoders._sequence import check_choice
from fusiondx.errors import ConfigError
from fusiondx.registry import register_encoder


@register_encoder("signal_transformer")
class SignalTransformerEncoder(Encoder):
    """Transformer over signal patches (Vaswani et al., 2017; the PatchTST idea, Nie et al., 2023).

    A strided Conv1d cuts the (B, C, T) signal into ``T / patch_size`` patch tokens, learned
    positions are added, and a pre-norm ``nn.TransformerEncoder`` mixes them. The embedding is the
    mean of the outputs (or a CLS token's output); the tokens are the patch outputs.

    Args:
        in_channels: leads.
        length: samples per record, which sets the number of learned positions; records of
            another length reuse them by linear interpolation.
        out_dim: embedding width.
        dropout: dropout in the transformer and before the projection.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        patch_size: samples per patch token (the stem's kernel and stride).
        d_model: token width inside the transformer.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``d_model``).
        dim_feedforward: hidden width of each layer's feed-forward block.
        pooling: ``mean`` of the patch outputs or ``cls`` token.
    """

    kind = "signal"

    def __init__(
        self,
        *,
        in_channels: int,
        length: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        patch_size: int = 20,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 128,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        check_choice(pooling, ("mean", "cls"), option="pooling", owner="signal_transformer")
        check_heads(d_model, num_heads, owner="signal_transformer")
        if not 0 < patch_size <= length:
            raise ConfigError(
                f"signal_transformer patch_size {patch_size} does not fit records of {length} samples",
                fix="use a patch_size between 1 and the record length",
            )
        self.patch = nn.Conv1d(in_channels, d_model, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.zeros(1, length // patch_size, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.pooling = pooling
        # Only the CLS variant owns a CLS parameter, so no parameter is ever left without gradient.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.transformer = transformer_encoder(
            d_model,
            num_heads,
            num_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            attention_dropout=attention_dropout,
            owner="signal_transformer",
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, out_dim)
        self.out_dim = out_dim

    def _positions(self, n: int) -> torch.Tensor:
        if n == self.pos.shape[1]:
            return self.pos
        return F.interpolate(self.pos.transpose(1, 2), size=n, mode="linear").transpose(1, 2)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:  # (B, [1 +] P, d_model), before the layers
        tokens = self.patch(x).transpose(1, 2)  # (B, P, d_model)
        tokens = tokens + self._positions(tokens.shape[1])
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return tokens

    def _encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, [1 +] P, d_model)
        return self.transformer(self._tokens(x))

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        return h[:, 0] if self.cls_token is not None else h.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._pool(self._encode(x))))

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = transformer_layers(self.transformer, self._tokens(x))
        return [self._pool(h) for h in outs[:-1]] + [self.proj(self.dropout(self._pool(outs[-1])))]

    def level_dims(self) -> list[int]:
        n = len(self.transformer.layers)
        return [self.proj.in_features] * (n - 1) + [self.out_dim]

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self._encode(x)
        if self.cls_token is not None:
            h = h[:, 1:]
        return self.proj(self.dropout(h))  # (B, P, D)
