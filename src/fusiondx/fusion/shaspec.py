"""Intermediate fusion by shared and specific features, a missing modality filled from the shared."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._missing import SharedSpecific, mean_of_valid, pair_index, present_only
from fusiondx.registry import register_fusion


@register_fusion(
    "shaspec",
    reference="Wang et al., Multi-modal Learning with Missing Modality via Shared-Specific "
    "Feature Modelling (ShaSpec), CVPR 2023",
)
class ShaSpecFusion(Fusion):
    """Shared and specific features per modality; a missing one is the mean of the present shared.

    As in ShaSpec, one shared encoder is applied to every modality and each modality has its own
    specific encoder. A present modality's feature is the residual fusion
    ``f_m = s_m + W [s_m; p_m]`` of its shared ``s_m`` and specific ``p_m`` features (``W``
    shared by all modalities); a missing modality's feature is generated as the mean of the
    shared features of the present modalities (the shared space is modality-agnostic, so this is
    the best guess of what the missing modality shares with them). The M features are
    concatenated in sorted order and projected to ``out_dim``.

    Two auxiliary losses shape the two spaces in training, both over present modalities only:

    - domain classification (the paper's DCO): a linear classifier on ``p_m`` must tell which
      modality it came from, cross-entropy averaged over present (case, modality) pairs, so
      specific features keep what is particular to their modality;
    - distribution alignment (DAO): the mean absolute difference ``mean_d |s_i - s_j|`` between
      the shared features of two modalities of the same case, averaged over the pairs present
      together, so shared features hold what the modalities have in common.

    Simplified from the paper: the encoders here are small MLPs on the modality encoders'
    embeddings (the paper shares a whole CNN between same-shaped MRI sequences), so each modality
    first gets a linear adapter to the common width before the shared MLP.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        width: width of the shared, specific and fused features.
        dropout: dropout inside the encoders.
        domain_weight: weight of the domain classification loss.
        align_weight: weight of the shared-feature alignment (L1) loss.
    """

    level = "intermediate"
    has_aux_loss = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        width: int = 64,
        dropout: float = 0.1,
        domain_weight: float = 0.1,
        align_weight: float = 0.1,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.domain_weight = float(domain_weight)
        self.align_weight = float(align_weight)
        n = len(self.modalities)
        self.encoders = SharedSpecific(self.in_dims, width, dropout)
        self.residual = nn.Linear(2 * width, width)
        self.domain = nn.Linear(width, n)
        self.out = nn.Linear(n * width, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def complete(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every modality's feature (B, M, width), missing ones generated; and the shared and
        specific features (B, M, width) they came from (rows of absent modalities are junk)."""
        shared, specific = self.encoders(present_only(feats, mask, self.modalities))
        fused = shared + self.residual(torch.cat([shared, specific], dim=-1))
        present = mask.unsqueeze(-1)
        n_present = present.sum(dim=1).clamp_min(1).to(shared.dtype)
        mean_shared = torch.where(present, shared, torch.zeros_like(shared)).sum(1) / n_present
        return torch.where(present, fused, mean_shared.unsqueeze(1)), shared, specific

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        filled, shared, specific = self.complete(feats, mask)
        self.aux_losses = self._losses(shared, specific, mask) if self.training else {}
        out = self.out(filled.flatten(1))
        return torch.where(mask.any(dim=1, keepdim=True), out, self.empty.to(out.dtype))

    def _losses(
        self, shared: torch.Tensor, specific: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        b, n, _ = specific.shape
        target = torch.arange(n, device=mask.device).repeat(b)
        ce = F.cross_entropy(self.domain(specific).reshape(b * n, n), target, reduction="none")
        i, j = pair_index(n, mask.device)
        l1 = (shared[:, i] - shared[:, j]).abs().mean(dim=-1)  # (B, pairs)
        return {
            "domain": self.domain_weight * mean_of_valid(ce.view(b, n), mask),
            "align": self.align_weight * mean_of_valid(l1, mask[:, i] & mask[:, j]),
        }
