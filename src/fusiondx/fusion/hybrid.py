"""Lightweight hybrid fusion: multi-scale modality features, then cross-modal attention per modality."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import check_heads
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import valid_tokens
from fusiondx.registry import register_fusion


@register_fusion(
    "hybrid",
    reference="EHPAL-Net: efficient hybrid fusion of multimodal medical data (seed paper); "
    "multi-scale pooling after Zhao et al., PSPNet, CVPR 2017",
)
class HybridFusion(Fusion):
    """Multi-scale features per modality, then a fused state that attends to one modality at a time.

    Each modality's real tokens are summarised at several scales (a masked mean over the whole
    sequence and over 2, 4, ... equal segments), giving a few multi-scale tokens that are
    cheap to attend to. A fused state (started from a learned vector) then visits the
    modalities one by one in sorted order: it cross-attends to that modality's multi-scale
    tokens and is updated through a learned gate. A missing modality's step is skipped for
    that case, so it changes nothing; the cost grows linearly with the number of modalities.

    Args:
        in_dims: token width per modality.
        out_dim: width of the fused vector.
        d_model: attention width.
        scales: segment counts of the multi-scale summaries.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout on the attended values before the gated update.
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
        scales: tuple[int, ...] = (1, 2, 4),
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        check_heads(d_model, num_heads, owner="fusion 'hybrid'")
        self.scales = tuple(int(s) for s in scales)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.scale_embedding = nn.Parameter(torch.randn(sum(self.scales), d_model) * 0.02)
        self.start = nn.Parameter(torch.zeros(1, 1, d_model))
        self.attn = nn.ModuleDict(
            {
                m: nn.MultiheadAttention(
                    d_model, num_heads, dropout=attention_dropout, batch_first=True
                )
                for m in self.modalities
            }
        )
        self.dropout = nn.Dropout(dropout)
        self.gate = nn.ModuleDict({m: nn.Linear(2 * d_model, d_model) for m in self.modalities})
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, out_dim)

    def _multiscale(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # (B, S, D)
        summaries = []
        for s in self.scales:
            # Masked means over s equal segments: pool sums and counts, then divide.
            w = valid.to(x.dtype).unsqueeze(1)  # (B, 1, T)
            sums = F.adaptive_avg_pool1d(x.transpose(1, 2) * w, s)  # (B, D, s)
            counts = F.adaptive_avg_pool1d(w, s).clamp_min(1e-6)
            summaries.append((sums / counts).transpose(1, 2))
        return torch.cat(summaries, dim=1) + self.scale_embedding

    def forward(
        self,
        feats: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
        token_masks: Mapping[str, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        token_masks = token_masks or {}
        state = self.start.expand(mask.shape[0], -1, -1)  # (B, 1, D)
        for j, m in enumerate(self.modalities):
            x, valid = valid_tokens(feats[m], mask[:, j], token_masks.get(m))
            ms = self._multiscale(self.proj[m](x), valid)
            attended, _ = self.attn[m](state, ms, ms, need_weights=False)
            attended = self.dropout(attended)
            g = torch.sigmoid(self.gate[m](torch.cat([state, attended], dim=-1)))
            updated = self.norm(state + g * attended)
            has = valid.any(dim=1)[:, None, None]
            state = torch.where(has, updated, state)
        return self.out(state[:, 0])
