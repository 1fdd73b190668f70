"""Late (decision-level) fusion: average the per-modality predicted probabilities."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import no_modality_fill, present_mean
from fusiondx.registry import register_fusion


@register_fusion(
    "late_average", reference="Kittler et al., On combining classifiers, TPAMI 1998 (mean rule)"
)
class LateAverageFusion(Fusion):
    """Each modality predicts on its own; the fused prediction is the mean over present ones.

    Inputs are per-modality probabilities (B, K); a missing modality is left out of the mean
    (the weights renormalise over the present ones). A case with no modality present gets the
    uninformative prediction (1/K multiclass, 0.5 otherwise) or ``fill``.

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
        self.task = task
        self.fill = no_modality_fill(task, self.out_dim, fill)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return present_mean(self.stack(feats), mask, self.fill)
