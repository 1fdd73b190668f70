"""Intermediate fusion by a gated multimodal unit."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import AbsentEmbedding, Projections, masked_softmax
from fusiondx.registry import register_fusion


@register_fusion(
    "gated", reference="Arevalo et al., Gated Multimodal Units for Information Fusion, ICLR-W 2017"
)
class GatedFusion(Fusion):
    """Gated multimodal unit: every modality's tanh view, mixed by gates that see all modalities.

    Generalised from the paper's two-modality sigmoid gate to M modalities: the gate network
    reads the concatenation of all embeddings (absent ones replaced by a learned vector) and
    outputs one gate per modality and feature; a softmax over the present modalities makes
    the gates of each feature sum to one.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = Projections(self.in_dims, out_dim)
        self.absent = AbsentEmbedding([self.in_dims[m] for m in self.modalities])
        self.gate = nn.Linear(sum(self.in_dims.values()), len(self.modalities) * out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.proj(feats))  # (B, M, D)
        both = torch.cat(self.absent([feats[m] for m in self.modalities], mask), dim=-1)
        g = self.gate(both).view(-1, len(self.modalities), self.out_dim)  # (B, M, D)
        # one softmax over modalities per feature: fold D into the batch axis
        b, m, d = g.shape
        flat = g.permute(0, 2, 1).reshape(b * d, m)
        gates = masked_softmax(flat, mask.repeat_interleave(d, dim=0)).view(b, d, m)
        fused = (
            gates.permute(0, 2, 1) * torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))
        ).sum(1)
        return torch.where(mask.any(dim=1, keepdim=True), fused, self.empty.to(fused.dtype))
