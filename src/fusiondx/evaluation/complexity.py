"""Model size and cost: parameters and FLOPs per case, as reported in study tables and docs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def flops_per_case(model: nn.Module, inputs: Any, mask: torch.Tensor) -> int:
    """Forward FLOPs of one case (a multiply-add counts 2), counted by ``torch.utils.flop_counter``.

    ``inputs`` and ``mask`` are a batch; the FLOPs of the whole batch in eval mode are divided
    by its size. Counted ops are matrix products, convolutions and attention (what dominates);
    element-wise ops are not. A training step costs about 3x the forward.
    """
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(inputs, mask)
    finally:
        model.train(was_training)
    return int(round(counter.get_total_flops() / max(int(mask.shape[0]), 1)))
