"""Intermediate fusion by an LSTM over the sequence of the present modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._missing import present_only
from fusiondx.registry import register_fusion


@register_fusion(
    "medfuse",
    reference="Hayat, Geras & Shamout, MedFuse: Multi-modal fusion with clinical time-series "
    "data and chest X-ray images, MLHC 2022",
)
class MedFuseFusion(Fusion):
    """An LSTM reads the present modalities as a sequence of variable length; its last state fuses.

    As in MedFuse, each modality's embedding is projected to a common width and the projected
    vectors are fed to an LSTM as a sequence, one step per modality; a missing modality is not
    a step at all (not a zero step), so a case with two modalities is a sequence of length two.
    The order is the sorted modality order, and the fused vector is a linear map of the last
    layer's hidden state after the last present modality.

    Implementation: each case's present modalities are moved to the front of a (B, M, D)
    sequence and the LSTM's output is read at step ``n_present - 1``. An LSTM is causal, so the
    steps after it (padding) cannot change that output: it equals running the LSTM on the case's
    present modalities alone (no packed sequences needed, and the batch runs at once). A case
    with nothing present gets a learned vector.

    Generalised from the paper's two modalities (clinical time series first, then the chest
    X-ray) to M modalities in sorted order; the paper's unimodal pre-training stages are the
    encoders' business here and are not part of the fusion.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        hidden: width of the projections and of the LSTM.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers (only with ``num_layers > 1``).
    """

    level = "intermediate"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        hidden: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], hidden) for m in self.modalities})
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def sequence(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (B, M, hidden) projected present modalities moved to the front, in sorted order,
        zeros after them; and each case's number of present modalities (B,)."""
        xs = present_only(feats, mask, self.modalities)
        steps = torch.stack(
            [self.proj[m](x) for m, x in zip(self.modalities, xs, strict=True)], dim=1
        )
        steps = torch.where(mask.unsqueeze(-1), steps, torch.zeros_like(steps))
        # a stable sort of "absent" flags puts present modalities first, keeping their order
        order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices
        steps = torch.gather(steps, 1, order.unsqueeze(-1).expand_as(steps))
        return steps, mask.sum(dim=1)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        steps, lengths = self.sequence(feats, mask)
        outputs, _ = self.lstm(steps)  # (B, M, hidden)
        last = (lengths - 1).clamp_min(0)
        h = torch.gather(outputs, 1, last.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1]))
        fused = self.out(h.squeeze(1))
        return torch.where(lengths.unsqueeze(1) > 0, fused, self.empty.to(fused.dtype))
