"""Intermediate fusion by low-rank multimodal (tensor) fusion."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.registry import register_fusion


@register_fusion(
    "low_rank_tensor",
    reference="Liu et al., Efficient Low-rank Multimodal Fusion with Modality-Specific Factors, ACL 2018",
)
class LowRankTensorFusion(Fusion):
    """The tensor-fusion outer product of all modalities, computed through rank-r factors.

    Each modality (with a constant 1 appended, so lower-order interactions survive) is mapped
    by ``rank`` factor matrices to ``out_dim``; the fused vector is the sum over ranks of the
    element-wise product of the modality factors, which equals a weight tensor of rank
    ``rank`` applied to the full outer product, for any number of modalities. A missing
    modality's factor is set to 1, the identity of the product, so it contributes nothing.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        rank: rank of the fusion weight tensor.
    """

    level = "intermediate"

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, rank: int = 4) -> None:
        super().__init__(in_dims, out_dim)
        self.rank = rank
        self.factors = nn.ParameterDict(
            {
                m: nn.Parameter(
                    torch.randn(rank, self.in_dims[m] + 1, out_dim) * (self.in_dims[m] + 1) ** -0.5
                )
                for m in self.modalities
            }
        )
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        fused = None
        for j, m in enumerate(self.modalities):
            x = feats[m]
            x1 = torch.cat([x, torch.ones_like(x[:, :1])], dim=-1)  # (B, d+1)
            f = torch.einsum("bd,rdo->bro", x1, self.factors[m])  # (B, R, O)
            f = torch.where(mask[:, j, None, None], f, torch.ones_like(f))
            fused = f if fused is None else fused * f
        assert fused is not None
        out = torch.einsum("bro,r->bo", fused, self.rank_weights) + self.bias
        # Nothing present: every factor is 1, so the output is a constant (learned) vector.
        return out
