"""The ``pretrain`` section: the self-supervised objectives of `fusiondx pretrain`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fusiondx.config._strict import _Strict


class ObjectiveConfig(_Strict):
    name: str
    """A registered objective (`fusiondx list objectives`): contrastive, masked_modality,
    reconstruction."""
    options: dict[str, Any] = Field(default_factory=dict)


class PretrainConfig(_Strict):
    objectives: list[ObjectiveConfig] = Field(
        default_factory=lambda: [ObjectiveConfig(name="contrastive")]
    )
    """Summed; each objective's ``weight`` option scales it."""
