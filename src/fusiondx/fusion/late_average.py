"""Late (decision-level) fusion: average the per-modality predicted probabilities."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fusiondx.fusion._base import Fusion
from fusiondx.registry import register_fusion


@register_fusion("late_average", tags={"handles_missing"},
                 reference="Kittler et al., On combining classifiers, TPAMI 1998 (mean rule)")
class LateAverageFusion(Fusion):
    """Each modality predicts on its own; the fused prediction is the mean over present ones.

    Inputs are per-modality probabilities (B, K); a missing modality is left out of the mean
    (the weights renormalise over the present ones). A case with no modality present gets
    ``fill`` (0.5 by default: no information).

    Args:
        in_dims: number of task outputs per modality (all equal).
        out_dim: number of task outputs.
        fill: probability returned where no modality is present.
    """

    level = "late"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, fill: float = 0.5) -> None:
        super().__init__(in_dims, out_dim)
        self.fill = fill

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        probs = self.stack(feats)  # (B, M, K)
        w = mask.to(probs.dtype).unsqueeze(-1)  # (B, M, 1)
        total = w.sum(dim=1)  # (B, 1)
        mean = (probs * w).sum(dim=1) / total.clamp_min(1.0)
        return torch.where(total > 0, mean, torch.full_like(mean, self.fill))
