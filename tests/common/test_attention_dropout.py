"""Attention-weight dropout is off by default everywhere and set apart from the residual dropout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from torch import nn

from fusiondx.encoders.image_vit import ViTEncoder
from fusiondx.encoders.signal_transformer import SignalTransformerEncoder
from fusiondx.encoders.tabular_ft_transformer import FTTransformerEncoder
from fusiondx.encoders.text_transformer import TextTransformerEncoder
from fusiondx.fusion.bottleneck import BottleneckFusion
from fusiondx.fusion.multimodal_transformer import MultimodalTransformerFusion

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "text_transformer": lambda **kw: TextTransformerEncoder(vocab_size=50, max_length=16, **kw),
    "signal_transformer": lambda **kw: SignalTransformerEncoder(in_channels=2, length=100, **kw),
    "vit": lambda **kw: ViTEncoder(in_channels=1, image_size=(32, 32), **kw),
    "ft_transformer": lambda **kw: FTTransformerEncoder(n_numeric=3, cardinalities=[2], **kw),
    "multimodal_transformer": lambda **kw: MultimodalTransformerFusion({"a": 8, "b": 8}, 16, **kw),
    "bottleneck": lambda **kw: BottleneckFusion({"a": 8, "b": 8}, 16, **kw),
}


def _attention(module: nn.Module) -> list[nn.MultiheadAttention]:
    return [m for m in module.modules() if isinstance(m, nn.MultiheadAttention)]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_attention_dropout_defaults_to_zero_and_can_be_set(name: str) -> None:
    build: Callable[..., Any] = BUILDERS[name]
    default = build(dropout=0.3)
    assert _attention(default) and all(m.dropout == 0.0 for m in _attention(default))
    # The residual/feed-forward dropout keeps its own rate.
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in default.modules())
    set_ = build(dropout=0.3, attention_dropout=0.2)
    assert all(m.dropout == 0.2 for m in _attention(set_))
