"""Masked-modality modelling: predict a held-out modality's embedding from the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import masked_mean
from fusiondx.objectives._base import Objective
from fusiondx.registry import register_objective


@register_objective(
    "masked_modality",
    reference="Bachmann et al., MultiMAE: Multi-modal Multi-task Masked Autoencoders, ECCV 2022; "
    "Chen & He, Exploring Simple Siamese Representation Learning (SimSiam), CVPR 2021",
)
class MaskedModalityObjective(Objective):
    """Hide one present modality of each case and predict its embedding from the others.

    Every modality is projected to a ``dim``-wide space. For each case with at least two present
    modalities, one of them is held out at random; the mean projection of the others plus a
    learned query of the held-out modality goes through a predictor MLP, whose output should point
    the way the held-out projection does: the loss is ``1 - cos(prediction, stop_grad(target))``
    as in SimSiam, whose stop-gradient keeps the two branches from collapsing to a constant.

    Args:
        dim: width of the projected space.
        hidden: width of the predictor's hidden layer.
        weight: multiplies the loss.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        specs: Mapping[str, Mapping[str, Any]],
        *,
        dim: int = 128,
        hidden: int = 256,
        weight: float = 1.0,
    ) -> None:
        super().__init__(dims, specs, weight=weight)
        self.proj = nn.ModuleDict({m: nn.Linear(self.dims[m], dim) for m in self.modalities})
        self.query = nn.Parameter(torch.zeros(len(self.modalities), dim))
        self.predictor = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor, inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        usable = mask.sum(dim=1) >= 2
        if not bool(usable.any()) or len(self.modalities) < 2:
            return self.zero(emb)
        z = torch.stack([self.proj[m](emb[m]) for m in self.modalities], dim=1)  # (B, M, d)
        # torch.where: a missing modality's row passes neither values nor gradient.
        z = torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z))
        z, present = z[usable], mask[usable]
        scores = torch.rand(present.shape, device=z.device).masked_fill(~present, -1.0)
        held = scores.argmax(dim=1)  # a present modality per case
        rows = torch.arange(len(held), device=z.device)
        context = present.clone()
        context[rows, held] = False
        pred = self.predictor(masked_mean(z, context) + self.query[held])
        target = z[rows, held].detach()
        return self.weight * (1 - F.cosine_similarity(pred, target, dim=-1)).mean()
