"""Late (decision-level) fusion by a product of experts over the per-modality predictions."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import no_modality_fill
from fusiondx.registry import register_fusion

EPS = 1e-6


@register_fusion(
    "product_of_experts",
    reference="Hinton, Training Products of Experts by Minimizing Contrastive Divergence, "
    "Neural Computation 2002; Wu & Goodman, Multimodal Generative Models for "
    "Scalable Weakly-Supervised Learning (MVAE), NeurIPS 2018",
)
class ProductOfExpertsFusion(Fusion):
    """Each modality is an expert; the fused prediction is the normalised product of experts.

    Inputs are per-modality probabilities (B, K), clamped to ``[1e-6, 1 - 1e-6]``. For
    ``binary`` and ``multilabel`` tasks every output is an independent Bernoulli expert, and
    the normalised product of Bernoullis has logit ``sum_m logit(p_m)``, so the fused
    probability is ``sigmoid(sum_m logit(p_m))``. For ``multiclass`` the product of categorical
    experts is ``softmax(sum_m log p_m)``. The product is over any number of present modalities,
    as in the MVAE's product of Gaussian experts.

    A missing modality contributes nothing: it is left out of the sum (as if its expert were
    uniform) and its placeholder is never read. A case with no modality present gets the
    uninformative prediction (1/K multiclass, 0.5 otherwise) or ``fill``.

    Args:
        in_dims: number of task outputs per modality (all equal).
        out_dim: number of task outputs.
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
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
        probs = self.stack(feats).clamp(EPS, 1.0 - EPS)  # (B, M, K)
        if self.task == "multiclass":
            evidence = torch.log(probs)
        else:
            evidence = torch.log(probs) - torch.log1p(-probs)  # logit
        # torch.where, not a product: an absent placeholder passes neither values nor gradient.
        evidence = torch.where(mask.unsqueeze(-1), evidence, torch.zeros_like(evidence)).sum(dim=1)
        fused = (
            torch.softmax(evidence, dim=-1)
            if self.task == "multiclass"
            else torch.sigmoid(evidence)
        )
        return torch.where(mask.any(dim=1, keepdim=True), fused, torch.full_like(fused, self.fill))
