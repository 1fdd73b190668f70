"""Pieces shared by several fusion strategies."""

from __future__ import annotations

import torch
from torch import nn


class AbsentEmbedding(nn.Module):
    """Replaces a missing modality's features with a learned 'absent' vector of that modality.

    The placeholder a missing modality arrives with is zeros that could pass for data; swapping
    in a learned vector tells the downstream network the modality is absent, and no gradient
    reaches the encoder from a masked case.
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.absent = nn.ParameterList([nn.Parameter(torch.zeros(d)) for d in dims])

    def forward(self, feats: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        # torch.where, not a product: a masked case must pass neither values nor gradient.
        return [torch.where(mask[:, i : i + 1], f, self.absent[i].to(f.dtype))
                for i, f in enumerate(feats)]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` Linear-GELU-Dropout blocks, the last mapping to ``out_dim``."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
        d = hidden
    mods += [nn.Linear(d, out_dim), nn.GELU()]
    return nn.Sequential(*mods)
