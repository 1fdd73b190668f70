"""Intermediate fusion by concatenating modality embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import AbsentEmbedding, mlp
from fusiondx.registry import register_fusion


@register_fusion(
    "concat",
    reference="Ngiam et al., Multimodal Deep Learning, ICML 2011; Baltrusaitis et al., TPAMI 2019",
)
class ConcatFusion(Fusion):
    """Concatenate the modality embeddings, then a small MLP (feature-level fusion).

    A missing modality's embedding is replaced by a learned per-modality 'absent' vector, so the
    MLP sees absence explicitly instead of zeros that look like data.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        hidden: width of the MLP's hidden layer.
        layers: number of MLP layers (>= 1).
        dropout: dropout inside the MLP.
    """

    level = "intermediate"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.absent = AbsentEmbedding([self.in_dims[m] for m in self.modalities])
        self.net = mlp(sum(self.in_dims.values()), hidden, out_dim, layers, dropout)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        parts = self.absent([feats[m] for m in self.modalities], mask)
        return self.net(torch.cat(parts, dim=-1))  # (B, out_dim)
