"""Intermediate fusion by pairwise low-rank bilinear pooling (Hadamard product of factors)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import Projections
from fusiondx.registry import register_fusion


@register_fusion(
    "bilinear",
    reference="Kim et al., Hadamard Product for Low-rank Bilinear Pooling, ICLR 2017; "
    "Yu et al., Multi-modal Factorized Bilinear Pooling (MFB), ICCV 2017",
)
class BilinearFusion(Fusion):
    """Low-rank bilinear pooling of every pair of modalities, plus their projected mean.

    The papers pool two inputs as ``z = tanh(U x) * tanh(V y)`` (a rank-constrained bilinear
    form). Generalised to M modalities, every pair ``i < j`` (sorted order) has its own factors
    ``U_ij, V_ij`` of width ``factor_dim``; the pair terms are averaged over the pairs whose two
    members are both present, concatenated with the mean of the present modalities' linear
    projections (so a case with a single modality, or a one-modality configuration without
    pairs, still carries information), and mapped by a linear layer to ``out_dim``.

    A missing modality contributes nothing: every pair it belongs to is left out of the pair
    mean and it is left out of the projection mean (its placeholder is never read); a case with
    nothing present gets a learned 'empty' vector.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        factor_dim: width of the pairwise Hadamard-product factors.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, factor_dim: int = 64) -> None:
        super().__init__(in_dims, out_dim)
        self.factor_dim = factor_dim
        self.pairs = list(combinations(range(len(self.modalities)), 2))
        dims = [self.in_dims[m] for m in self.modalities]
        self.u = nn.ModuleList([nn.Linear(dims[i], factor_dim) for i, _ in self.pairs])
        self.v = nn.ModuleList([nn.Linear(dims[j], factor_dim) for _, j in self.pairs])
        self.proj = Projections(self.in_dims, out_dim)
        self.out = nn.Linear(factor_dim + out_dim, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = [feats[m] for m in self.modalities]
        b = mask.shape[0]
        h = self.proj(feats)  # (B, M, D)
        h = torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))
        n_present = mask.sum(dim=1, keepdim=True).to(h.dtype)  # (B, 1)
        mean_h = h.sum(dim=1) / n_present.clamp_min(1.0)  # (B, D)

        pair_sum = h.new_zeros(b, self.factor_dim)
        n_pairs = h.new_zeros(b, 1)
        for k, (i, j) in enumerate(self.pairs):
            both = mask[:, i : i + 1] & mask[:, j : j + 1]  # (B, 1)
            z = torch.tanh(self.u[k](x[i])) * torch.tanh(self.v[k](x[j]))  # (B, F)
            # torch.where, not a product: a pair with an absent member passes no value or gradient.
            pair_sum = pair_sum + torch.where(both, z, torch.zeros_like(z))
            n_pairs = n_pairs + both.to(h.dtype)
        pair_mean = pair_sum / n_pairs.clamp_min(1.0)

        fused = self.out(torch.cat([pair_mean, mean_h], dim=-1))
        return torch.where(mask.any(dim=1, keepdim=True), fused, self.empty.to(fused.dtype))
