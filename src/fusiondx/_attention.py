"""Attention-weight dropout, set in one place for every transformer in the package.

``nn.TransformerEncoderLayer`` applies its ``dropout`` both to the residual branches and to the
attention weights. Dropout on the weights makes every layer materialise the attention matrix and
draw a random mask over it instead of running the fused attention kernel; on a CPU that was about
12% of the default model's training step (BENCHMARKS.md). The encoders and fusions therefore
take a separate ``attention_dropout``, 0 by default, and keep ``dropout`` for the rest.
"""

from __future__ import annotations

from torch import nn


def set_attention_dropout(module: nn.Module, p: float) -> None:
    """Dropout ``p`` on the attention weights of every ``nn.MultiheadAttention`` in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = p
