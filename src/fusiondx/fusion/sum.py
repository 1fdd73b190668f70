"""Intermediate fusion by summing projected modality embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import Projections, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "sum",
    reference="Baltrusaitis et al., Multimodal Machine Learning: A Survey and Taxonomy, TPAMI 2019 (additive fusion)",
)
class SumFusion(Fusion):
    """Project every modality to a shared space and average the present ones.

    The mean (not the raw sum) over present modalities keeps the scale the same whether one
    or all modalities are there; a case with none present gets a learned 'empty' vector.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the shared space and of the fused vector.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = Projections(self.in_dims, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(feats)  # (B, M, D)
        w = mask.to(x.dtype) / mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
        return weighted_sum(x, w, self.empty, mask)
