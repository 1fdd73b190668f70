"""Intermediate fusion by self-attention over the tokens of every modality."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx._nn import transformer_encoder
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import valid_tokens
from fusiondx.registry import register_fusion


@register_fusion(
    "multimodal_transformer",
    reference="Tsai et al., Multimodal Transformer for Unaligned Multimodal Language Sequences, ACL 2019; "
    "Nagrani et al., Attention Bottlenecks for Multimodal Fusion, NeurIPS 2021 (joint self-attention)",
)
class MultimodalTransformerFusion(Fusion):
    """A transformer over all modalities' tokens at once, read out through a fusion token.

    Every modality's tokens are projected to ``d_model`` and tagged with a learned modality
    embedding; a learned fusion token is prepended and the whole sequence goes through a
    transformer encoder. Tokens of a missing modality (and padding tokens) are masked out of
    attention, so they cannot influence the result; a case with nothing present sees only its
    fusion token.

    Args:
        in_dims: token width per modality.
        out_dim: width of the fused vector.
        d_model: transformer width.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout inside the transformer.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
    """

    level = "intermediate"
    uses_tokens = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.modality_embedding = nn.Parameter(torch.randn(len(self.modalities), d_model) * 0.02)
        self.fusion_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.encoder = transformer_encoder(
            d_model,
            num_heads,
            num_layers,
            dim_feedforward=2 * d_model,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation="relu",
            final_norm=False,
            owner="fusion 'multimodal_transformer'",
        )
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, out_dim))

    def forward(
        self,
        feats: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
        token_masks: Mapping[str, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        token_masks = token_masks or {}
        seqs, keep = [], []
        for j, m in enumerate(self.modalities):
            x, valid = valid_tokens(feats[m], mask[:, j], token_masks.get(m))
            seqs.append(self.proj[m](x) + self.modality_embedding[j])
            keep.append(valid)
        b = mask.shape[0]
        tokens = torch.cat([self.fusion_token.expand(b, -1, -1), *seqs], dim=1)  # (B, 1+T, D)
        keep_all = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), *keep], dim=1)
        h = self.encoder(tokens, src_key_padding_mask=~keep_all)
        return self.out(h[:, 0])  # (B, out_dim)
