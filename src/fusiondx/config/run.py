"""The whole run configuration (:class:`Config`): every section, and the checks across them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator

from fusiondx.config._strict import _Strict
from fusiondx.config.data import DataConfig
from fusiondx.config.fairness import FairnessConfig
from fusiondx.config.modalities import (
    ImageModality,
    Modality,
    SignalModality,
    TabularModality,
    TextModality,
)
from fusiondx.config.model import FusionConfig, TaskConfig
from fusiondx.config.posthoc import PosthocConfig
from fusiondx.config.presets import apply_preset, check_preset
from fusiondx.config.pretrain import PretrainConfig
from fusiondx.config.study import StudyConfig
from fusiondx.config.training import TrainConfig


class Config(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    preset: str | None = None
    """A model preset (``efficient``): encoders and fusion wherever the config names none;
    see :mod:`fusiondx.config.presets` and `fusiondx list presets`."""
    seed: int = 0
    output_dir: Path = Path("runs")
    data: DataConfig
    modalities: list[Modality] = Field(min_length=1)
    fusion: FusionConfig = FusionConfig()
    tasks: list[TaskConfig] = Field(min_length=1)
    train: TrainConfig = TrainConfig()
    posthoc: PosthocConfig = PosthocConfig()
    """Calibration, decision threshold and conformal sets of classification tasks."""
    study: StudyConfig = StudyConfig()
    """Used by `fusiondx study` and `fusiondx search` only."""
    pretrain: PretrainConfig = PretrainConfig()
    """Used by `fusiondx pretrain` only."""
    fairness: FairnessConfig = FairnessConfig()
    """Subgroups scored by `fusiondx evaluate` and the study (off unless columns are listed)."""

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        return check_preset(name)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for what, names in (
            ("modality", [m.name for m in self.modalities]),
            ("task", [t.name for t in self.tasks]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {dup}")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def modality(
        self, name: str
    ) -> ImageModality | SignalModality | TextModality | TabularModality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
