"""Contrastive alignment of every pair of modalities in one shared space (CLIP loss)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import clip_scale, pairwise_info_nce
from fusiondx.objectives._base import Objective
from fusiondx.registry import register_objective


@register_objective(
    "contrastive",
    reference="Radford et al., Learning Transferable Visual Models From Natural Language "
    "Supervision (CLIP), ICML 2021; Oord et al., Representation Learning with Contrastive "
    "Predictive Coding (InfoNCE), 2018; Zhang et al., ConVIRT, MLHC 2022",
)
class ContrastiveObjective(Objective):
    """Two modalities of one case are a positive pair; other cases of the batch are negatives.

    Every modality gets a linear projection into a ``dim``-wide space, L2-normalised (as CLIP).
    For every pair of modalities, the symmetric InfoNCE loss with a learned temperature is taken
    over the cases of the batch where both are present; the loss is the mean over the pairs that
    have at least two such cases (a single case has no negative to tell it from). It is the loss
    of the ``shared_space`` fusion (``fusiondx._nn.pairwise_info_nce``), here without labels.

    Args:
        dim: width of the shared space.
        temperature: initial temperature; learned as ``log(1/temperature)``, capped at 1/100.
        weight: multiplies the loss.
    """

    projects = True

    def __init__(
        self,
        dims: Mapping[str, int],
        specs: Mapping[str, Mapping[str, Any]],
        *,
        dim: int = 128,
        temperature: float = 0.07,
        weight: float = 1.0,
    ) -> None:
        super().__init__(dims, specs, weight=weight)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.dim = dim
        self.proj = nn.ModuleDict({m: nn.Linear(self.dims[m], dim) for m in self.modalities})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def project(self, emb: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: F.normalize(self.proj[m](emb[m]), dim=-1) for m in self.modalities if m in emb}

    def forward(
        self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor, inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        if len(self.modalities) < 2:
            return self.zero(emb)
        z = torch.stack([self.project(emb)[m] for m in self.modalities], dim=1)  # (B, M, d)
        # torch.where: a missing modality's placeholder passes neither values nor gradient.
        z = torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z))
        return self.weight * pairwise_info_nce(z, mask, clip_scale(self.logit_scale))
