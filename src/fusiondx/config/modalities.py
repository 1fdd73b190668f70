"""The ``modalities`` section: one entry per input (image, signal, text, tabular), its encoder and
its preprocessing; ``kind`` chooses the entry's model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from fusiondx.config._strict import _Strict

DEFAULT_ENCODERS = {"image": "cnn", "signal": "cnn1d", "text": "text_transformer", "tabular": "mlp"}


class EncoderConfig(_Strict):
    name: str | None = None
    """Registered encoder name; default per kind: image cnn, signal cnn1d, text text_transformer, tabular mlp."""
    options: dict[str, Any] = Field(default_factory=dict)
    init: Path | None = None
    """Start from the encoder of this modality in an ``encoders.pt`` written by `fusiondx
    pretrain` (same encoder name and options; the modality is then preprocessed as it was there)."""
    freeze: bool = False
    """With ``init``: keep the pretrained weights fixed (a linear-probe style fine-tune)."""

    @model_validator(mode="after")
    def _freeze_needs_init(self) -> EncoderConfig:
        if self.freeze and self.init is None:
            raise ValueError("encoder.freeze needs encoder.init (a pretrained encoders.pt to keep)")
        return self


class AugmentConfig(_Strict):
    flip: bool = False
    rotate: float = Field(0.0, ge=0, le=180)
    scale: float = Field(0.0, ge=0, lt=1)


class ImagePreprocessing(_Strict):
    size: list[int] = Field(default_factory=lambda: [64, 64], min_length=2, max_length=3)
    channels: Literal[1, 3] = 1
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
    window: Literal["header"] | tuple[float, float] | None = None
    """Intensity window (center, width), or 'header' to use the DICOM header's window."""
    augment: AugmentConfig = AugmentConfig()


class SignalPreprocessing(_Strict):
    rate: float | None = Field(100.0, gt=0)
    """Resample every record to this rate (Hz); None keeps native rates (then they must agree)."""
    source_rate: float | None = Field(None, gt=0)
    """Rate of CSV/NPY records, which carry none of their own."""
    length: int = Field(1000, gt=0)
    leads: int | None = Field(None, gt=0)
    lead_names: list[str] | None = None
    normalize: Literal["per_lead", "none"] = "per_lead"
    crop: Literal["start", "center"] = "start"
    min_fraction: float = Field(0.5, gt=0, le=1)


class TextPreprocessing(_Strict):
    tokenizer: Literal["wordpiece", "bpe", "word", "minilm"] = "wordpiece"
    vocab_size: int = Field(2000, ge=50)
    max_length: int = Field(64, ge=4)
    lowercase: bool = True
    min_frequency: int = Field(2, ge=1)


class TabularPreprocessing(_Strict):
    standardize: bool = True


class _ModalityBase(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    encoder: EncoderConfig = EncoderConfig()

    @property
    def encoder_name(self) -> str:
        return self.encoder.name or DEFAULT_ENCODERS[self.kind]  # type: ignore[attr-defined]


class ImageModality(_ModalityBase):
    kind: Literal["image"]
    column: str
    preprocessing: ImagePreprocessing = ImagePreprocessing()


class SignalModality(_ModalityBase):
    kind: Literal["signal"]
    column: str
    preprocessing: SignalPreprocessing = SignalPreprocessing()


class TextModality(_ModalityBase):
    kind: Literal["text"]
    column: str
    preprocessing: TextPreprocessing = TextPreprocessing()


class TabularModality(_ModalityBase):
    kind: Literal["tabular"]
    columns: list[str] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    """Columns (among ``columns``) holding categories; the others must be numeric."""
    preprocessing: TabularPreprocessing = TabularPreprocessing()

    @model_validator(mode="after")
    def _categorical_subset(self) -> TabularModality:
        extra = [c for c in self.categorical if c not in self.columns]
        if extra:
            raise ValueError(f"categorical columns {extra} are not listed in columns")
        return self


Modality = Annotated[
    ImageModality | SignalModality | TextModality | TabularModality, Field(discriminator="kind")
]
