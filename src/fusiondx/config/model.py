"""The model's sections: ``fusion`` (how the modality embeddings are combined) and ``tasks`` (the
heads, their labels and targets)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from fusiondx.config._strict import _Strict
from fusiondx.errors import did_you_mean


class FusionConfig(_Strict):
    name: str = "concat"
    dim: int = Field(128, gt=0)
    """Width of every modality embedding and of the fused vector."""
    options: dict[str, Any] = Field(default_factory=dict)


class TextTargetConfig(_Strict):
    """How the reference text of a generation task becomes token ids (a word vocabulary)."""

    max_length: int = Field(64, ge=4)
    """Tokens per report, counting the begin and end markers; longer reports are cut."""
    vocab_size: int = Field(5000, ge=10)
    min_frequency: int = Field(1, ge=1)
    lowercase: bool = True


class TaskConfig(_Strict):
    name: str = Field("diagnosis", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    head: str = "classification"
    """classification, regression, survival, localization, segmentation or generation."""
    label: str | list[str]
    """The label column. Multilabel: a list of 0/1 columns or one column split by
    label_separator. Survival: [time column, event column]. Localization: a column of boxes
    'x0 y0 x1 y1' in pixels. Segmentation: a column of mask file paths. Generation: a text column."""
    type: str | None = None
    """A task type (binary, multiclass, multilabel, regression, survival, box, mask, text, or
    any registered one). Classification: inferred from the classes when omitted (2 classes ->
    binary, more -> multiclass). Other heads have one type each (regression, survival, box,
    mask, text)."""
    image: str | None = None
    """Localization and segmentation: the image modality the boxes or masks belong to
    (default: the only image modality)."""
    text: TextTargetConfig = TextTargetConfig()
    """Generation only: tokenization of the reference text."""
    classes: list[str] | None = None
    """Declared class names; a label outside them is an error. Inferred from the data when omitted."""
    positive_class: str | None = None
    label_separator: str | None = None
    class_weights: Literal["balanced"] | list[float] | None = None
    weight: float = Field(1.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str | None) -> str | None:
        from fusiondx.registry import TASK_TYPES

        if v is not None and v not in TASK_TYPES:
            known = TASK_TYPES.names()
            raise ValueError(
                f"there is no task type '{v}'.{did_you_mean(v, known)} Known types: "
                f"{', '.join(known)}"
            )
        return v

    @field_validator("classes", "label")
    @classmethod
    def _no_repeats(cls, v: str | list[str] | None, info: Any) -> str | list[str] | None:
        # A repeated class name would become a class of its own that no case can have.
        if isinstance(v, list):
            dup = sorted({c for c in v if v.count(c) > 1})
            if dup:
                raise ValueError(
                    f"{info.field_name} must not repeat a name; repeated: "
                    f"{', '.join(repr(d) for d in dup)}"
                )
        return v
