"""The encoder contract: one modality's tensor -> an embedding (B, D), optionally tokens (B, T, D)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from fusiondx.configurable import Configurable


class Encoder(Configurable, nn.Module):
    """Base class of every encoder.

    Subclasses set ``kind`` (``image``, ``signal``, ``text`` or ``tabular``), take the fitted
    modality spec fields they need (``in_channels``, ``spatial_dims``, ``image_size``, ``length``,
    ``vocab_size``, ``max_length``, ``n_numeric``, ``cardinalities``) plus ``out_dim`` and their own
    options as keyword arguments, and set ``self.out_dim``.

    Encoders registered with the ``tokens`` tag also implement :meth:`forward_tokens`, returning a
    sequence of ``out_dim``-wide tokens for fusions that attend across modalities.
    """

    kind: ClassVar[str] = ""
    out_dim: int

    def forward(self, x: Any) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def forward_tokens(self, x: Any) -> torch.Tensor:  # (B, T, D)
        """A sequence of ``out_dim``-wide tokens; by default the embedding as a single token.

        Encoders tagged ``tokens`` override this with their natural sequence (image patches or
        feature-map positions, signal time steps, text tokens, tabular feature tokens).
        """
        return self.forward(x).unsqueeze(1)

    def token_mask(self, x: Any) -> torch.Tensor | None:  # (B, T) bool, True = real token
        """Which tokens of :meth:`forward_tokens` are real (not padding); None when all are."""
        return None
