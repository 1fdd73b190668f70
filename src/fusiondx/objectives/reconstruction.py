"""Reconstruction (autoencoding) of each modality's low-level input from its embedding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.objectives._base import Objective
from fusiondx.objectives._targets import lowlevel_target, target_width
from fusiondx.registry import register_objective


@register_objective(
    "reconstruction",
    reference="Ngiam et al., Multimodal Deep Learning, ICML 2011 (multimodal autoencoder); "
    "Vincent et al., Stacked Denoising Autoencoders, JMLR 2010",
)
class ReconstructionObjective(Objective):
    """Each present modality's embedding must keep enough to redraw a summary of its input.

    A small decoder per modality maps the embedding to a low-level summary of the input (an
    8x8 thumbnail per channel, a 32-step trace per lead, a hashed bag of words, the table row;
    :mod:`fusiondx.objectives._targets`), with a mean squared error over the present cases,
    averaged over the modalities. The target is the input itself, so this objective cannot
    collapse; it teaches the encoder what is in its own modality, not what modalities share
    (that is ``contrastive``'s job).

    Args:
        hidden: width of each decoder's hidden layer.
        text_bins: size of the hashed bag of words of text modalities.
        weight: multiplies the loss.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        specs: Mapping[str, Mapping[str, Any]],
        *,
        hidden: int = 256,
        text_bins: int = 256,
        weight: float = 1.0,
    ) -> None:
        super().__init__(dims, specs, weight=weight)
        self.text_bins = text_bins
        self.decoders = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(self.dims[m], hidden),
                    nn.GELU(),
                    nn.Linear(hidden, target_width(self.specs[m], text_bins)),
                )
                for m in self.modalities
            }
        )

    def forward(
        self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor, inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        losses = []
        for m in self.modalities:
            here = self.present(mask, m)
            if not bool(here.any()):
                continue
            with torch.no_grad():
                target = lowlevel_target(self.specs[m], inputs[m], self.text_bins)[here]
            losses.append(F.mse_loss(self.decoders[m](emb[m][here]), target))
        if not losses:
            return self.zero(emb)
        return self.weight * torch.stack(losses).mean()
