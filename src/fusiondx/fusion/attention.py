"""Intermediate fusion by attention over modality embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import Projections, masked_softmax, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "attention",
    reference="Bahdanau et al., ICLR 2015; Huang et al., Multimodal fusion with attention for EHR and imaging, npj Digit. Med. 2020",
)
class AttentionFusion(Fusion):
    """Per-case softmax attention over the projected modality embeddings.

    Each embedding is scored by a small tanh layer against a learned context vector (additive
    attention); the softmax runs over the present modalities only, so a case weighs its
    modalities by how informative they look for that case.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the shared space and of the fused vector.
        hidden: width of the scoring layer.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, hidden: int = 64) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = Projections(self.in_dims, out_dim)
        self.score = nn.Sequential(
            nn.Linear(out_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False)
        )
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(feats)  # (B, M, D)
        w = masked_softmax(self.score(x).squeeze(-1), mask)  # (B, M)
        return weighted_sum(x, w, self.empty, mask)
