"""Intermediate fusion by a learned, renormalised weighting of the modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import Projections, masked_softmax, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "weighted_sum",
    reference="Vielzeuf et al., CentralNet: a Multilayer Approach for Multimodal Fusion, ECCV-W 2018 (learned modality weights)",
)
class WeightedSumFusion(Fusion):
    """Projected modality embeddings summed with one learned weight per modality.

    The weights are a softmax over learned logits taken over the present modalities only, so
    they always sum to one; ``modality_weights()`` shows what the model relies on.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the shared space and of the fused vector.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = Projections(self.in_dims, out_dim)
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def modality_weights(self) -> dict[str, float]:
        """The learned weight of each modality when all are present."""
        w = torch.softmax(self.logits.detach(), dim=0)
        return {m: float(v) for m, v in zip(self.modalities, w, strict=True)}

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(feats)  # (B, M, D)
        w = masked_softmax(self.logits.expand(mask.shape[0], -1), mask)  # (B, M)
        return weighted_sum(x, w, self.empty, mask)
