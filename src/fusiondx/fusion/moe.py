"""Intermediate fusion by a mixture of modality experts."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import AbsentEmbedding, masked_softmax, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "moe",
    reference="Jacobs et al., Adaptive Mixtures of Local Experts, Neural Computation 1991; Mustafa et al., LIMoE, NeurIPS 2022",
)
class MixtureOfExpertsFusion(Fusion):
    """One expert network per modality, mixed by a gate that sees every modality at once.

    The gate reads all embeddings together (absent ones replaced by a learned vector) and
    outputs a softmax over the present modalities' experts, so for each case it can trust
    the modality that is most informative given the others. An expert whose modality is
    missing is dropped from the mixture.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        hidden: width of each expert's hidden layer and of the gate.
        dropout: dropout inside the experts.
    """

    level = "intermediate"

    def __init__(
        self, in_dims: Mapping[str, int], out_dim: int, *, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.experts = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(self.in_dims[m], hidden),
                    nn.GELU(),
                    nn.Dropout(dropout),
                    nn.Linear(hidden, out_dim),
                )
                for m in self.modalities
            }
        )
        self.absent = AbsentEmbedding([self.in_dims[m] for m in self.modalities])
        self.gate = nn.Sequential(
            nn.Linear(sum(self.in_dims.values()), hidden),
            nn.GELU(),
            nn.Linear(hidden, len(self.modalities)),
        )
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([self.experts[m](feats[m]) for m in self.modalities], dim=1)  # (B, M, D)
        joint = torch.cat(self.absent([feats[m] for m in self.modalities], mask), dim=-1)
        w = masked_softmax(self.gate(joint), mask)  # (B, M)
        return weighted_sum(outs, w, self.empty, mask)
