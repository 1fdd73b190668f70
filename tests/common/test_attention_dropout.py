"""Attention-weight dropout is off by default everywhere and set apart from the residual dropout.

The parts under test come from the registries: every encoder and fusion whose constructor takes
``attention_dropout``, and a check that every part holding an ``nn.MultiheadAttention`` is one
of them (so a new attention part cannot be left out of this file).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from torch import nn

from fusiondx.registry import ENCODERS, FUSIONS, Entry

try:
    from specs import build_encoder, small_spec
except ImportError:  # collected as part of a `tests` package
    from tests.common.specs import build_encoder, small_spec

PARTS: list[Entry[Any]] = [*ENCODERS.entries(), *FUSIONS.entries()]
ATTENTION = [e for e in PARTS if "attention_dropout" in e.options()]


def _build(entry: Entry[Any], **options: Any) -> nn.Module:
    if entry.cls.__module__.startswith("fusiondx.encoders"):
        return build_encoder(entry.name, small_spec(entry.cls.kind), **options)
    late = entry.cls.level == "late"
    width = 2 if late else 8  # a late fusion's inputs are the task outputs
    extra = {"level_dims": {"a": [width], "b": [width]}} if entry.cls.uses_levels else {}
    return FUSIONS.create(
        entry.name,
        in_dims={"a": width, "b": width},
        out_dim=width if late else 16,
        **extra,
        **options,
    )


def _attention(module: nn.Module) -> list[nn.MultiheadAttention]:
    return [m for m in module.modules() if isinstance(m, nn.MultiheadAttention)]


def test_every_part_with_attention_takes_attention_dropout() -> None:
    assert len(ATTENTION) >= 8  # 4 transformer encoders, 4 attention fusions
    taking = {e.name for e in ATTENTION}
    for e in PARTS:
        if any(importlib.util.find_spec(m) is None for m in e.meta.get("requires", ())):
            continue
        if _attention(_build(e)):
            assert e.name in taking, f"'{e.name}' holds attention but takes no attention_dropout"


@pytest.mark.parametrize("name", [e.name for e in ATTENTION])
def test_attention_dropout_defaults_to_zero_and_can_be_set(name: str) -> None:
    entry = next(e for e in ATTENTION if e.name == name)
    assert entry.options()["attention_dropout"] == 0.0
    default = _build(entry, dropout=0.3)
    assert _attention(default) and all(m.dropout == 0.0 for m in _attention(default))
    # The residual/feed-forward dropout keeps its own rate.
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in default.modules())
    set_ = _build(entry, dropout=0.3, attention_dropout=0.2)
    assert all(m.dropout == 0.2 for m in _attention(set_))
