"""The run configuration: YAML validated with pydantic before anything runs.

Every section forbids unknown keys and the error names the key, its place in the file and the
closest valid key. Paths in ``data`` are resolved against the YAML file's folder, so a config can
be moved together with its data.

One module per part of the file: :mod:`.data`, :mod:`.modalities`, :mod:`.model` (fusion and
tasks), :mod:`.training`, :mod:`.posthoc`, :mod:`.study`, :mod:`.pretrain`, :mod:`.fairness`, the
whole :class:`Config` in :mod:`.run`, and reading a
file in :mod:`.loading`. Import the names from ``fusiondx.config``.
"""

from __future__ import annotations

from fusiondx.config.data import DataConfig, SplitConfig
from fusiondx.config.fairness import BandConfig, FairnessConfig
from fusiondx.config.loading import DuplicateKeyError, load_config, load_yaml
from fusiondx.config.modalities import (
    DEFAULT_ENCODERS,
    AugmentConfig,
    EncoderConfig,
    ImageModality,
    ImagePreprocessing,
    Modality,
    SignalModality,
    SignalPreprocessing,
    TabularModality,
    TabularPreprocessing,
    TextModality,
    TextPreprocessing,
)
from fusiondx.config.model import FusionConfig, TaskConfig, TextTargetConfig
from fusiondx.config.posthoc import ConformalConfig, PosthocConfig
from fusiondx.config.pretrain import ObjectiveConfig, PretrainConfig
from fusiondx.config.run import Config
from fusiondx.config.study import StudyConfig
from fusiondx.config.training import EarlyStoppingConfig, TrainConfig

__all__ = [
    "DEFAULT_ENCODERS",
    "AugmentConfig",
    "BandConfig",
    "Config",
    "ConformalConfig",
    "DataConfig",
    "DuplicateKeyError",
    "EarlyStoppingConfig",
    "EncoderConfig",
    "FairnessConfig",
    "FusionConfig",
    "ImageModality",
    "ImagePreprocessing",
    "Modality",
    "ObjectiveConfig",
    "PosthocConfig",
    "PretrainConfig",
    "SignalModality",
    "SignalPreprocessing",
    "SplitConfig",
    "StudyConfig",
    "TabularModality",
    "TabularPreprocessing",
    "TaskConfig",
    "TextModality",
    "TextPreprocessing",
    "TextTargetConfig",
    "TrainConfig",
    "load_config",
    "load_yaml",
]
