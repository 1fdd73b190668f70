"""The head contract: fused representation -> task outputs, loss and metrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fusiondx.configurable import Configurable


class Head(Configurable, nn.Module):
    """Base class of task heads.

    ``forward(fused)`` maps (B, in_dim) to the task's raw outputs; ``loss(outputs, target)`` is
    the training loss; ``evaluate(outputs, target)`` returns a dict of metrics over a whole split.
    Heads that support late (decision-level) fusion also map outputs to probabilities and back.
    """

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_probs(self, probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, outputs: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError
