"""The fusion contract: per-modality features + presence mask -> one fused vector per case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

from fusiondx.configurable import Configurable


class Fusion(Configurable, nn.Module):
    """Base class of every fusion strategy.

    ``in_dims`` maps modality name -> feature width; modalities are always handled in sorted
    order, and ``mask`` (B, M) is True where a modality is present for that case, in that order.

    ``level`` says what the model feeds in:

    - ``early``: low-level features of each modality's raw input (see ``encoders/lowlevel.py``);
      the fusion itself holds the shared network;
    - ``intermediate``: each modality encoder's embedding;
    - ``late``: each modality's own task decision, as probabilities (``in_dims`` are then the
      number of task outputs); the fused output is a probability too.

    A missing modality must contribute nothing: its features are placeholders and must not be
    read as data.

    Fusions with ``uses_tokens = True`` (tag ``tokens``) receive each
    modality's token sequence (B, T_m, D_m) instead of its embedding, and ``token_masks``
    (modality -> (B, T_m) bool, True = real token, or None when all are real).

    Fusions with ``uses_levels = True`` (tag ``levels``) receive, per modality, the list of
    pooled features from shallow to deep of ``Encoder.forward_levels`` instead of the embedding,
    and take ``level_dims`` (modality -> widths) from the model builder.

    Fusions with a ``fit_meta`` method (tag ``fits_on_validation``) have a part that the engine
    fits on the validation split after training.

    Fusions with ``has_aux_loss = True`` (tag ``aux_loss``) learn part of their representation
    from the pairing of modalities itself (contrastive alignment, reconstruction, a KL term):
    in training mode each forward sets :attr:`aux_losses` (name -> scalar, already scaled by the
    fusion's own weight option), and the engine adds their sum to the task loss. In eval mode
    they compute no auxiliary loss, so prediction and export cost nothing extra.

    The registry's tags come from these class attributes (:meth:`part_tags`), never from the
    registration.
    """

    level: ClassVar[str] = "intermediate"
    uses_tokens: ClassVar[bool] = False
    uses_levels: ClassVar[bool] = False
    handles_missing: ClassVar[bool] = True
    """A missing modality contributes nothing (the contract above; the common suite checks it)."""
    has_aux_loss: ClassVar[bool] = False

    @classmethod
    def part_tags(cls) -> set[str]:
        """Tags read off the class: ``handles_missing``, ``tokens``, ``levels``,
        ``fits_on_validation``, ``aux_loss``."""
        flags = {
            "handles_missing": cls.handles_missing,
            "tokens": cls.uses_tokens,
            "levels": cls.uses_levels,
            "fits_on_validation": callable(getattr(cls, "fit_meta", None)),
            "aux_loss": cls.has_aux_loss,
        }
        return {t for t, on in flags.items() if on}

    def __init__(self, in_dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__()
        if not in_dims:
            raise ValueError("a fusion needs at least one modality")
        self.modalities: list[str] = sorted(in_dims)
        self.in_dims = {m: int(in_dims[m]) for m in self.modalities}
        self.out_dim = int(out_dim)
        self.aux_losses: dict[str, torch.Tensor] = {}
        if self.level == "late" and set(self.in_dims.values()) != {self.out_dim}:
            raise ValueError(
                f"late fusion needs every input width equal to out_dim={out_dim}, got {self.in_dims}"
            )

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def aux_loss(self) -> torch.Tensor | None:
        """The sum of the last training forward's auxiliary losses, or None when there are none."""
        if not self.aux_losses:
            return None
        return torch.stack(list(self.aux_losses.values())).sum()

    def stack(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Equal-width features as (B, M, D) in sorted modality order."""
        return torch.stack([feats[m] for m in self.modalities], dim=1)
