"""Model size and cost: parameters and FLOPs per case, as reported in study tables and docs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops_per_case(model: nn.Module, inputs: Any, mask: torch.Tensor) -> int:
    """Forward FLOPs of one case (a multiply-add counts 2), counted by ``torch.utils.flop_counter``.

    ``inputs`` and ``mask`` are a batch; the FLOPs of the whole batch in eval mode are divided
    by its size. Counted ops are matrix products and convolutions (what dominates); element-wise
    ops are not, nor are the attention score products (2 T^2 D per layer), which run in a fused
    CPU kernel the counter cannot see. A training step costs about 3x the forward.
    """
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    model.eval()
    # In eval mode nn.TransformerEncoderLayer takes a fused kernel the counter cannot see.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        counter = FlopCounterMode(display=False)
        # With gradients on: under no_grad the counter's module tracking fails on some
        # attention modules ("Expected gradient function to be set", torch 2.13).
        # fork_rng: counting must not move the random streams a training then draws from.
        with torch.random.fork_rng(devices=[]), torch.enable_grad(), counter:
            # predict(): what inference runs, e.g. a report decoder generating its text.
            getattr(model, "predict", model)(inputs, mask)
    finally:
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(round(counter.get_total_flops() / max(int(mask.shape[0]), 1)))
