"""Intermediate fusion by a shared latent array that attends to each present modality in turn."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx._nn import check_heads, set_attention_dropout, transformer_layer
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._missing import present_only
from fusiondx.registry import register_fusion


class _CrossBlock(nn.Module):
    """Pre-norm cross-attention from the latents to one modality's tokens, then a feed-forward."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        set_attention_dropout(self.attn, attention_dropout)
        self.ff = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, 2 * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * d_model, d_model),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, latent: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(tokens)
        attended, _ = self.attn(self.norm_q(latent), kv, kv, need_weights=False)
        latent = latent + self.dropout(attended)
        return latent + self.dropout(self.ff(latent))


@register_fusion(
    "healnet",
    reference="Hemker, Simidjievski & Jamnik, HEALNet: Multimodal Fusion for Heterogeneous "
    "Biomedical Data, NeurIPS 2024",
)
class HEALNetFusion(Fusion):
    """A shared latent array updated by cross-attention to each present modality, in turns.

    As in HEALNet, a learned latent array (``num_latents`` x ``d_model``) is the only state that
    crosses modalities: at each of ``depth`` fusion steps it attends to every modality in turn
    (sorted order) through that modality's own cross-attention and feed-forward block, then
    updates itself with a self-attention layer. The blocks' weights are shared across the steps
    (HEALNet's weight sharing), so depth adds iterations, not parameters. A modality missing for
    a case is skipped: its update is not applied to that case's latents, so it contributes
    nothing, and the case's latents go on with the modalities it has. The latents are
    mean-pooled, normalised and projected to ``out_dim``; a case with nothing present gets a
    learned vector.

    Simplified from the paper: HEALNet attends over each modality's raw input (pixels,
    omics features); here it attends over the modality encoder's embedding, which a linear map
    turns into ``tokens_per_modality`` tokens (with a single token the softmax over keys is
    trivial and the cross-attention becomes a gated update, as for the paper's tabular inputs).
    The paper's Fourier position encodings of raw inputs are not needed on these tokens.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        d_model: width of the latents and tokens.
        num_latents: rows of the shared latent array.
        tokens_per_modality: tokens each modality embedding is split into.
        depth: fusion steps (each visits every present modality once).
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout on the residual branches.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
    """

    level = "intermediate"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        d_model: int = 64,
        num_latents: int = 8,
        tokens_per_modality: int = 4,
        depth: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        check_heads(d_model, num_heads, owner="fusion 'healnet'")
        if min(num_latents, tokens_per_modality, depth) < 1:
            raise ValueError("num_latents, tokens_per_modality and depth must be at least 1")
        self.d_model = int(d_model)
        self.tokens_per_modality = int(tokens_per_modality)
        self.depth = int(depth)
        self.tokenize = nn.ModuleDict(
            {m: nn.Linear(self.in_dims[m], tokens_per_modality * d_model) for m in self.modalities}
        )
        self.latent = nn.Parameter(torch.randn(num_latents, d_model) * 0.02)
        self.cross = nn.ModuleDict(
            {
                m: _CrossBlock(d_model, num_heads, dropout, attention_dropout)
                for m in self.modalities
            }
        )
        self.self_attn = transformer_layer(
            d_model,
            num_heads,
            2 * d_model,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation="gelu",
            owner="fusion 'healnet'",
        )
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, out_dim))
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def latents(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The latent array (B, num_latents, d_model) after the ``depth`` fusion steps."""
        xs = present_only(feats, mask, self.modalities)
        tokens = [
            self.tokenize[m](x).view(-1, self.tokens_per_modality, self.d_model)
            for m, x in zip(self.modalities, xs, strict=True)
        ]
        latent = self.latent.unsqueeze(0).expand(mask.shape[0], -1, -1)
        for _ in range(self.depth):
            for j, m in enumerate(self.modalities):
                updated = self.cross[m](latent, tokens[j])
                # a missing modality is skipped: that case keeps its latents as they were
                latent = torch.where(mask[:, j].view(-1, 1, 1), updated, latent)
            latent = self.self_attn(latent)
        return latent

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        fused = self.out(self.latents(feats, mask).mean(dim=1))
        return torch.where(mask.any(dim=1, keepdim=True), fused, self.empty.to(fused.dtype))
