"""Transformer text encoder trained from scratch: embeddings, learned positions, masked pooling."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx._nn import check_heads, masked_mean, transformer_encoder
from fusiondx.encoders._base import Encoder, transformer_layers
from fusiondx.errors import ConfigError
from fusiondx.registry import register_encoder


@register_encoder("text_transformer")
class TextTransformerEncoder(Encoder):
    """Small transformer encoder over tokens (Vaswani et al., 2017), masked mean pooling.

    Token embeddings plus learned positions go through a pre-norm ``nn.TransformerEncoder`` that
    ignores padding (``src_key_padding_mask``); the embedding is the mean over real tokens, as in
    Sentence-BERT (Reimers & Gurevych, 2019). An all-padding row (a missing text) embeds to the
    projection of zeros, never NaN. ``num_layers: 0`` keeps no transformer layer: a bag of
    embeddings (token plus position embeddings, LayerNorm, masked mean), whose only matrix product
    is the projection, for a text encoder that costs next to no FLOPs (the ``efficient`` preset).

    Args:
        vocab_size: token ids are 0..vocab_size-1, 0 being padding.
        max_length: longest token sequence (number of learned positions).
        out_dim: embedding width.
        dropout: dropout in the transformer and before the projection.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        d_model: token width inside the transformer.
        num_layers: transformer layers; 0 for a bag of embeddings (no attention, no
            feed-forward block: ``num_heads`` and ``dim_feedforward`` are then unused).
        num_heads: attention heads (must divide ``d_model``).
        dim_feedforward: hidden width of each layer's feed-forward block.
    """

    kind = "text"

    def __init__(
        self,
        *,
        vocab_size: int,
        max_length: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 128,
    ) -> None:
        super().__init__()
        if num_layers < 0:
            raise ConfigError(
                f"text_transformer num_layers must be 0 or more, got {num_layers}",
                fix="set num_layers to 0 (a bag of embeddings) or a positive number of layers",
            )
        check_heads(d_model, num_heads, owner="text_transformer")
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_length, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.transformer = transformer_encoder(
            d_model,
            num_heads,
            num_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            attention_dropout=attention_dropout,
            owner="text_transformer",
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, out_dim)
        self.out_dim = out_dim

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embedded tokens, the real-token mask and the key padding mask of the layers."""
        if x.shape[1] > self.max_length:
            raise ConfigError(
                f"text_transformer got {x.shape[1]} tokens, more than max_length={self.max_length}",
                fix="truncate the texts to max_length in the data config or raise max_length",
            )
        mask = x != 0  # (B, L)
        h = self.embed(x) + self.pos[:, : x.shape[1]]
        # A row of padding only would make every attention score -inf (NaN after softmax): let it
        # attend to its first position; the pooling below still ignores that position.
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(dim=1)
        return h, mask, ~attend

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, mask, padding = self._inputs(x)
        if not self.transformer.layers:  # num_layers 0: a bag of embeddings
            return self._norm(h), mask
        return self.transformer(h, src_key_padding_mask=padding), mask

    def _norm(self, h: torch.Tensor) -> torch.Tensor:
        norm = self.transformer.norm
        return h if norm is None else norm(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, mask = self._encode(x)
        return self.proj(self.dropout(masked_mean(h, mask)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._encode(x)[0]))  # (B, L, D)

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        return x != 0

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, mask, padding = self._inputs(x)
        if not self.transformer.layers:
            outs = [self._norm(h)]
        else:
            outs = transformer_layers(self.transformer, h, padding)
        return [masked_mean(o, mask) for o in outs[:-1]] + [
            self.proj(self.dropout(masked_mean(outs[-1], mask)))
        ]

    def level_dims(self) -> list[int]:
        n = max(len(self.transformer.layers), 1)
        return [self.proj.in_features] * (n - 1) + [self.out_dim]
