"""Pieces shared by the fusions built for missing modalities (shaspec, drfuse, medfuse, m3care,
healnet, flex_moe)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def present_only(
    feats: Mapping[str, torch.Tensor], mask: torch.Tensor, modalities: list[str]
) -> list[torch.Tensor]:
    """Each modality's (B, D_m) features in ``modalities`` order, absent rows replaced by zeros.

    Done once at the door, so nothing downstream (encoders, auxiliary losses) ever computes on a
    placeholder: ``torch.where`` passes neither its values (a NaN stays out) nor a gradient.
    """
    return [
        torch.where(mask[:, j : j + 1], feats[m], torch.zeros_like(feats[m]))
        for j, m in enumerate(modalities)
    ]


class SharedSpecific(nn.Module):
    """One encoder shared by every modality and one specific encoder per modality.

    Modalities arrive with different widths, so each first goes through its own linear adapter
    to ``width``; the shared encoder after it has the same weights for every modality (the
    papers apply one network to every modality's input). The specific encoder of a modality
    reads its raw embedding. Both return (B, M, width) in sorted modality order; rows of absent
    modalities are computed on zeros and must be discarded by the caller.
    """

    def __init__(self, in_dims: Mapping[str, int], width: int, dropout: float) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.adapt = nn.ModuleDict({m: nn.Linear(in_dims[m], width) for m in self.names})
        self.shared = nn.Sequential(
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            nn.GELU(),
            nn.Linear(width, width),
        )
        self.specific = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(in_dims[m], width),
                    nn.GELU(),
                    nn.Dropout(dropout),
                    nn.Linear(width, width),
                )
                for m in self.names
            }
        )

    def forward(self, xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        shared = torch.stack(
            [self.shared(self.adapt[m](x)) for m, x in zip(self.names, xs, strict=True)], 1
        )
        specific = torch.stack(
            [self.specific[m](x) for m, x in zip(self.names, xs, strict=True)], 1
        )
        return shared, specific


def pair_index(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The unordered modality pairs i < j of ``n`` modalities, as two index tensors."""
    i, j = torch.triu_indices(n, n, offset=1, device=device)
    return i, j


def mean_of_valid(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over its ``valid`` entries (same shape); 0 when none is valid.

    Invalid entries are replaced, not multiplied away, so a non-finite value there cannot leak
    into the mean or its gradient.
    """
    kept = torch.where(valid, values, torch.zeros_like(values))
    return kept.sum() / valid.sum().clamp_min(1).to(values.dtype)
