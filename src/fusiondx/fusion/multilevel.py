"""Intermediate fusion at several encoder depths, not only the last."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import masked_softmax, mlp, weighted_sum
from fusiondx.registry import register_fusion


@register_fusion(
    "multilevel",
    reference="Karpathy et al., Large-scale video classification with CNNs, CVPR 2014 (slow fusion); "
    "Joze et al., MMTM: multimodal transfer module for CNN fusion, CVPR 2020",
)
class MultilevelFusion(Fusion):
    """Modalities fused at ``depths`` encoder depths, then the depths combined.

    Each encoder hands over pooled features from shallow to deep (``Encoder.forward_levels``:
    conv stages, transformer layers, hidden blocks; one level for encoders without depths).
    Levels are aligned by relative depth: level j of L goes to depth bin round(j (K-1) / (L-1)),
    so a 4-stage CNN, a 2-layer transformer and a 1-level encoder meet at the deepest bin. In
    every bin the present modalities' levels are projected to ``out_dim`` and pooled by masked
    attention (a bin with nothing present uses a learned empty vector); the bins are then
    concatenated shallow to deep and mapped to ``out_dim`` by an MLP. Early, low-level
    interactions (texture with a lab value) and late, semantic ones both reach the head, the
    "slow fusion" idea generalised from two video streams to any number of modalities.

    Args:
        in_dims: embedding width per modality (the deepest level).
        out_dim: width of the fused vector and of every projected level.
        level_dims: widths of each modality's levels, shallow to deep, the last equal to
            ``in_dims``; filled in by the model builder from the encoders. Without it every
            modality has one level.
        depths: depth bins K.
        hidden: width of the MLP over the concatenated bins.
        dropout: dropout in that MLP.
    """

    level = "intermediate"
    uses_levels = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        level_dims: Mapping[str, Sequence[int]] | None = None,
        depths: int = 3,
        hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dims, out_dim)
        if depths < 1:
            raise ValueError(f"multilevel needs depths >= 1, got {depths}")
        dims = {
            m: [int(d) for d in (level_dims or {}).get(m, [self.in_dims[m]])]
            for m in self.modalities
        }
        for m, d in dims.items():
            if d[-1] != self.in_dims[m]:
                raise ValueError(
                    f"multilevel: the last level of '{m}' is {d[-1]} wide, its embedding {self.in_dims[m]}"
                )
        self.level_dims = dims
        self.depths = depths
        # slots[k]: (modality index, level index) pairs fused in depth bin k
        slots: list[list[tuple[int, int]]] = [[] for _ in range(depths)]
        for i, m in enumerate(self.modalities):
            n = len(dims[m])
            for j in range(n):
                k = depths - 1 if n == 1 else round(j * (depths - 1) / (n - 1))
                slots[k].append((i, j))
        self.slots = [s for s in slots if s]
        self.proj = nn.ModuleList(
            nn.ModuleList(
                nn.Sequential(
                    nn.Linear(dims[self.modalities[i]][j], out_dim), nn.LayerNorm(out_dim)
                )
                for i, j in s
            )
            for s in self.slots
        )
        self.score = nn.ModuleList(nn.Linear(out_dim, 1) for _ in self.slots)
        self.empty = nn.Parameter(torch.zeros(len(self.slots), out_dim))
        self.out = mlp(len(self.slots) * out_dim, hidden, out_dim, 2, dropout)

    def forward(
        self, feats: Mapping[str, torch.Tensor | Sequence[torch.Tensor]], mask: torch.Tensor
    ) -> torch.Tensor:
        levels = {
            m: [feats[m]] if isinstance(feats[m], torch.Tensor) else list(feats[m])
            for m in self.modalities
        }
        bins = []
        for k, slots in enumerate(self.slots):
            projs = cast(nn.ModuleList, self.proj[k])  # nn.ModuleList is not generic
            x = torch.stack(
                [p(levels[self.modalities[i]][j]) for p, (i, j) in zip(projs, slots, strict=True)],
                dim=1,
            )  # (B, S, D)
            present = mask[:, [i for i, _ in slots]]  # (B, S)
            w = masked_softmax(self.score[k](x).squeeze(-1), present)
            bins.append(weighted_sum(x, w, self.empty[k], present))
        return self.out(torch.cat(bins, dim=1))
