"""FT-Transformer tabular encoder: one token per feature, a CLS token, a transformer encoder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fusiondx._nn import check_heads, transformer_encoder
from fusiondx.encoders._base import Encoder, transformer_layers
from fusiondx.encoders._tabular import CategoricalEmbeddings, check_columns, unpack
from fusiondx.registry import register_encoder


@register_encoder("tabular_ft_transformer", aliases=("ft_transformer",))
class FTTransformerEncoder(Encoder):
    """FT-Transformer (Gorishniy et al., 2021): feature tokenizer + transformer + CLS token.

    Numeric column j becomes the token ``x_j * W_j + b_j``; where the value is missing, a learned
    per-column "missing" token replaces it, so absence is information rather than a zero.
    Categorical columns become embeddings (id 0, missing, has its own). A CLS token is added, a
    pre-norm ``nn.TransformerEncoder`` mixes them, and the CLS output through LayerNorm-ReLU-Linear
    is the embedding; the tokens are the feature outputs through the same head.

    Args:
        n_numeric: numeric columns.
        cardinalities: ids per categorical column (0 = missing, 1 = unseen category).
        out_dim: embedding width.
        dropout: dropout in the transformer and before the projection.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        d_token: token width.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``d_token``).
        dim_feedforward: hidden width of each layer's feed-forward block.
    """

    kind = "tabular"

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: Sequence[int],
        out_dim: int = 128,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        d_token: int = 32,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 64,
    ) -> None:
        super().__init__()
        check_columns(n_numeric, cardinalities, "tabular_ft_transformer")
        check_heads(d_token, num_heads, owner="tabular_ft_transformer", width_name="d_token")
        bound = 1.0 / math.sqrt(d_token)  # the rtdl reference initialisation
        self.num_weight = nn.Parameter(torch.empty(n_numeric, d_token).uniform_(-bound, bound))
        self.num_bias = nn.Parameter(torch.empty(n_numeric, d_token).uniform_(-bound, bound))
        self.missing_token = nn.Parameter(torch.empty(n_numeric, d_token).uniform_(-bound, bound))
        self.embeddings = CategoricalEmbeddings(cardinalities, [d_token] * len(cardinalities))
        self.cls_token = nn.Parameter(torch.empty(1, 1, d_token).uniform_(-bound, bound))
        # No final norm: the read-out head starts with its own LayerNorm (the rtdl design).
        self.transformer = transformer_encoder(
            d_token,
            num_heads,
            num_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            attention_dropout=attention_dropout,
            final_norm=False,
            owner="tabular_ft_transformer",
            width_name="d_token",
        )
        self.head = nn.Sequential(
            nn.LayerNorm(d_token), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_token, out_dim)
        )
        self.out_dim = out_dim

    def _tokens(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:  # (B, 1 + N + K, d_token)
        num, miss, cat = unpack(x)
        tokens = num.unsqueeze(-1) * self.num_weight + self.num_bias  # (B, N, d)
        m = miss.unsqueeze(-1)
        tokens = tokens * (1.0 - m) + self.missing_token * m
        parts = [self.cls_token.expand(num.shape[0], -1, -1), tokens]
        parts += [e.unsqueeze(1) for e in self.embeddings(cat)]
        return torch.cat(parts, dim=1)

    def _encode(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:  # (B, 1 + N + K, d_token)
        return self.transformer(self._tokens(x))

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self._encode(x)[:, 0])

    def forward_tokens(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self._encode(x)[:, 1:])  # (B, N + K, D)

    def forward_levels(self, x: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        outs = transformer_layers(self.transformer, self._tokens(x))
        return [h[:, 0] for h in outs[:-1]] + [self.head(outs[-1][:, 0])]

    def level_dims(self) -> list[int]:
        n = len(self.transformer.layers)
        return [self.cls_token.shape[-1]] * (n - 1) + [self.out_dim]
