"""The objective contract: modality embeddings + presence mask (+ inputs) -> one scalar loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from fusiondx.configurable import Configurable


class Objective(Configurable, nn.Module):
    """Base class of every pretraining objective.

    ``dims`` maps modality -> embedding width and ``specs`` modality -> the fitted
    :class:`~fusiondx.types.ModalitySpec` as a dict (what the objective may need to size a
    decoder); both are given by the engine, the remaining keyword options by the config.
    Modalities are handled in sorted order; ``mask`` (B, M) is True where a modality is present.

    ``forward(emb, mask, inputs)`` returns the loss of the batch, already multiplied by the
    objective's ``weight``. A missing modality must contribute nothing: its embedding is computed
    from a placeholder and must never be read (``torch.where``/indexing, not multiplication), so
    that it passes neither values nor gradient. A batch in which the objective has nothing to
    learn from (e.g. no case with two modalities) returns a zero that still belongs to the graph.

    Objectives with ``projects = True`` (tag ``shared_space``) hold a projection of every
    modality into one L2-normalised space, exposed as :meth:`project`; ``fusiondx retrieve`` and
    the retrieval metrics search that space.
    """

    projects: ClassVar[bool] = False

    @classmethod
    def part_tags(cls) -> set[str]:
        """Tags read off the class: ``shared_space``."""
        return {"shared_space"} if cls.projects else set()

    def __init__(
        self,
        dims: Mapping[str, int],
        specs: Mapping[str, Mapping[str, Any]],
        *,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not dims:
            raise ValueError("an objective needs at least one modality")
        self.modalities: list[str] = sorted(dims)
        self.dims = {m: int(dims[m]) for m in self.modalities}
        self.specs = {m: dict(specs[m]) for m in self.modalities}
        self.weight = float(weight)

    def forward(
        self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor, inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        raise NotImplementedError

    def project(self, emb: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality's embedding in the shared space, L2-normalised (B, d)."""
        raise NotImplementedError(f"objective '{type(self).__name__}' has no shared space")

    def zero(self, emb: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A zero loss that backpropagates (nothing to learn from in this batch)."""
        ref = next(iter(emb.values()))
        return torch.zeros((), device=ref.device, dtype=ref.dtype, requires_grad=True)

    def present(self, mask: torch.Tensor, m: str) -> torch.Tensor:
        """(B,) True where modality ``m`` is present."""
        return mask[:, self.modalities.index(m)]
