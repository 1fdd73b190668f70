"""The head contract: fused representation (+ context) -> task outputs, loss and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from fusiondx.configurable import Configurable


class HeadContext:
    """What a head may need besides the fused vector, computed only when asked for.

    Classification only reads the fused vector. Localisation and segmentation read an image
    encoder's feature maps; report generation attends over the tokens of every modality. The
    model fills what it computed anyway (e.g. tokens of a token-level fusion) so nothing runs
    twice; anything else is computed on first use and kept for the other heads.

    Attributes:
        mask: (B, M) bool, True where a modality is present (sorted modality order).
        modalities: the modality names, sorted (the columns of ``mask``).
    """

    def __init__(
        self,
        mask: torch.Tensor,
        modalities: list[str],
        compute_maps: Callable[[str], list[torch.Tensor]],
        compute_tokens: Callable[[str], tuple[torch.Tensor, torch.Tensor | None]],
    ) -> None:
        self.mask = mask
        self.modalities = modalities
        self._compute_maps = compute_maps
        self._compute_tokens = compute_tokens
        self._maps: dict[str, list[torch.Tensor]] = {}
        self._tokens: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def present(self, modality: str) -> torch.Tensor:
        """(B,) bool: which cases have this modality."""
        return self.mask[:, self.modalities.index(modality)]

    def maps(self, modality: str) -> list[torch.Tensor]:
        """Feature maps of an image modality's encoder, shallow (fine) to deep (coarse).

        Each is (B, C_i, *S_i); the encoder's ``map_channels()`` gives the C_i.
        """
        if modality not in self._maps:
            self._maps[modality] = self._compute_maps(modality)
        return self._maps[modality]

    def provide_maps(self, modality: str, maps: list[torch.Tensor]) -> None:
        """Hand over feature maps computed anyway (e.g. in the same encoder pass as the
        modality's embedding), so :meth:`maps` returns them instead of running the encoder again."""
        self._maps[modality] = maps

    def tokens(self, modality: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A modality's tokens (B, T, D) and which are real (B, T) bool, or None when all are."""
        if modality not in self._tokens:
            self._tokens[modality] = self._compute_tokens(modality)
        return self._tokens[modality]

    def memory(self, fused: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokens of every modality side by side, for a decoder to attend over.

        Returns ``(memory, padding)``: (B, T, D) tokens and (B, T) bool, True where a token must
        be ignored (PyTorch's ``key_padding_mask`` convention): padding tokens and every token
        of a modality the case lacks. With ``fused`` (B, D), it is prepended as one more token
        that is never ignored, so no case is left with nothing to attend to.
        """
        toks, pads = [], []
        if fused is not None:
            toks.append(fused.unsqueeze(1))
            pads.append(torch.zeros(fused.shape[0], 1, dtype=torch.bool, device=fused.device))
        for i, m in enumerate(self.modalities):
            t, real = self.tokens(m)
            absent = ~self.mask[:, i].unsqueeze(1).expand(-1, t.shape[1])
            pads.append(absent if real is None else absent | ~real)
            toks.append(t)
        return torch.cat(toks, dim=1), torch.cat(pads, dim=1)


class Head(Configurable, nn.Module):
    """Base class of task heads.

    - ``forward(fused, ctx, target)``: the outputs the loss needs, (B, in_dim) -> task outputs.
      ``target`` is passed during training and validation for heads that need it to compute
      their outputs (teacher forcing of a report decoder); others ignore it.
    - ``predict(fused, ctx)``: what the model answers at inference (default: ``forward``), e.g.
      generated token ids instead of teacher-forced logits.
    - ``loss(outputs, target)``: the training loss of a batch.
    - ``evaluate(predictions, target)``: metrics over a whole split, a dict of floats.

    Class attributes: ``primary_metric`` (what checkpointing and the study rank by, higher is
    better), ``needs`` (``"maps"`` or ``"tokens"``: context the head reads, so the model can
    compute it in the same pass as the fused vector). Heads that support late
    (decision-level) fusion also map outputs to probabilities and back. The registry's tags
    come from these class attributes (:meth:`part_tags`), never from the registration.
    """

    primary_metric: ClassVar[str] = "auroc"
    needs: ClassVar[frozenset[str]] = frozenset()
    supports_late: ClassVar[bool] = False
    """Maps outputs to probabilities and back, so late fusion can combine them (tag ``late``)."""
    decodes: ClassVar[bool] = False
    """True when ``predict`` differs from ``forward`` (and must be run separately; tag ``decodes``)."""
    skips_missing_targets: ClassVar[bool] = False
    """Cases whose target is missing (NaN, a mask of 255, a report of padding) are left out of
    the loss and the metrics (tag ``missing_targets``); otherwise every case needs a target."""

    @classmethod
    def part_tags(cls) -> set[str]:
        """Tags read off the class: the context it ``needs``, ``late``, ``decodes``, ``missing_targets``."""
        flags = {
            "late": cls.supports_late,
            "decodes": cls.decodes,
            "missing_targets": cls.skips_missing_targets,
        }
        return set(cls.needs) | {t for t, on in flags.items() if on}

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> Any:
        raise NotImplementedError

    def predict(self, fused: torch.Tensor, ctx: HeadContext | None = None) -> Any:
        return self.forward(fused, ctx)

    def loss(self, outputs: Any, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_probs(self, probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, predictions: Any, target: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError


def no_loss(outputs: torch.Tensor) -> torch.Tensor:
    """A zero loss that keeps the graph connected, for a batch without any usable target."""
    return outputs.sum() * 0.0
