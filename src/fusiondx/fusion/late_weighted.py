"""Late (decision-level) fusion with learned modality weights."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import masked_softmax, no_modality_fill
from fusiondx.registry import register_fusion


@register_fusion(
    "late_weighted",
    reference="Kittler et al., On combining classifiers, TPAMI 1998 (weighted mean rule)",
)
class LateWeightedFusion(Fusion):
    """Each modality predicts on its own; the fused prediction is a learned weighted mean.

    One weight per modality (softmax over learned logits), renormalised over the modalities
    present for each case. A case with no modality present gets the uninformative prediction
    (1/K multiclass, 0.5 otherwise) or ``fill``.

    Args:
        in_dims: number of task outputs per modality (all equal).
        out_dim: number of task outputs.
        task: binary | multiclass | multilabel (set by the model builder).
        fill: probability returned where no modality is present (default: uninformative).
    """

    level = "late"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        task: str = "binary",
        fill: float | None = None,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.task = task
        self.fill = no_modality_fill(task, self.out_dim, fill)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        probs = self.stack(feats)  # (B, M, K)
        w = masked_softmax(self.logits.expand(mask.shape[0], -1), mask).unsqueeze(-1)  # (B, M, 1)
        probs = torch.where(mask.unsqueeze(-1), probs, torch.zeros_like(probs))
        mean = (w * probs).sum(dim=1)
        return torch.where(mask.any(dim=1, keepdim=True), mean, torch.full_like(mean, self.fill))
