"""Intermediate fusion by feature-wise linear modulation (FiLM) between modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import Projections, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "film",
    reference="Perez et al., FiLM: Visual Reasoning with a General Conditioning Layer, AAAI 2018",
)
class FiLMFusion(Fusion):
    """Each modality's embedding is scaled and shifted by the other present modalities (FiLM).

    The paper conditions one network (vision) on one other input (language). Generalised to M
    modalities, every modality is both modulated and a conditioner: each modality is projected
    to ``out_dim`` (``h_m``); a per-modality generator maps the mean of the *other present*
    modalities' projections to ``gamma_m, beta_m``, and ``h_m' = h_m * (1 + gamma_m) + beta_m``
    (the identity when no other modality is present). The fused vector is the mean of ``h_m'``
    over the present modalities.

    A missing modality contributes nothing: it is left out of every conditioning mean and of
    the final mean (its placeholder is never read); a case with nothing present gets a learned
    'empty' vector.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = Projections(self.in_dims, out_dim)
        self.film = nn.ModuleDict({m: nn.Linear(out_dim, 2 * out_dim) for m in self.modalities})
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        h = self.proj(feats)  # (B, M, D)
        # torch.where, not a product: an absent placeholder passes neither values nor gradient.
        h = torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))
        present = mask.to(h.dtype)  # (B, M)
        total = h.sum(dim=1, keepdim=True)  # (B, 1, D)
        n_others = present.sum(dim=1, keepdim=True) - present  # (B, M): other present modalities
        context = (total - h) / n_others.clamp_min(1.0).unsqueeze(-1)  # (B, M, D)
        modulated = []
        for j, m in enumerate(self.modalities):
            gamma, beta = self.film[m](context[:, j]).chunk(2, dim=-1)  # (B, D) each
            has_context = n_others[:, j : j + 1] > 0
            gamma = torch.where(has_context, gamma, torch.zeros_like(gamma))
            beta = torch.where(has_context, beta, torch.zeros_like(beta))
            modulated.append(h[:, j] * (1.0 + gamma) + beta)
        h_mod = torch.stack(modulated, dim=1)  # (B, M, D)
        weights = present / present.sum(dim=1, keepdim=True).clamp_min(1.0)
        return weighted_sum(h_mod, weights, self.empty, mask)
