"""The ``data`` section: where the manifest is, how its cases are split, how decoded cases are cached.

Paths are resolved against the YAML file's folder by :func:`fusiondx.config.load_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fusiondx.config._strict import _Strict


class SplitConfig(_Strict):
    """How cases are divided into train / val / test."""

    column: str | None = None
    """Take the split from this manifest column (values train, val, test); overrides fractions."""
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: bool = True
    seed: int | None = None
    """Seed of the random split; defaults to the run's seed. A study fixes it so that every
    training seed sees the same test cases."""
    folds: int | None = Field(None, ge=2)
    """Cross-validation: the test split is fold ``fold`` of ``folds`` (grouped and stratified
    like the default split); val is drawn from the rest with the val fraction."""
    fold: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.folds is not None and self.column:
            raise ValueError(
                f"folds cannot be combined with column '{self.column}', which fixes every "
                "case's split; remove one of them"
            )
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(
                f"fold must be between 0 and folds - 1 = {self.folds - 1}, got {self.fold}"
            )
        return self

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(
                f"fractions must be three positive numbers summing to 1, got {list(v)}"
            )
        return v


class DataConfig(_Strict):
    manifest: Path
    root: Path | None = None
    """Folder that relative paths in the manifest resolve against; defaults to the manifest's folder."""
    sep: str = Field(",", min_length=1, max_length=1)
    """Column separator of a CSV manifest: ',' (default), ';' (spreadsheets set to a locale with
    decimal commas) or a tab ('\\t' in YAML double quotes)."""
    id_column: str = "case_id"
    patient_column: str | None = None
    """When set, all cases of one patient land in the same split; a case with a blank cell is a
    patient of its own."""
    metadata_columns: list[str] = Field(default_factory=list)
    """Acquisition and bookkeeping columns (site, scanner, view, follow-up number, ...). They are
    model inputs only if a modality lists them too; the study's metadata probe measures how well
    they alone predict the label, which no disease model should rely on."""
    split: SplitConfig = SplitConfig()
    label_fraction: float = Field(1.0, gt=0, le=1)
    """Train on this share of the training cases only (whole patients, stratified like the
    split); validation and test are unchanged. The study's label-efficiency protocol sets it."""
    train_missing: float = Field(0.0, ge=0, lt=1)
    """Hide each modality of each training case with this probability, fixed per case (never
    every modality of a case); validation and test keep their inputs. The study's
    missing-modality protocol sets it."""
    cache: Literal["memory", "disk"] = "memory"
    """Decoded cases are kept in memory, or in memory-mapped files that later runs reuse."""
    cache_dir: Path | None = None
    """Folder of the disk cache; default ``<output_dir>/.cache``."""
    cache_shard_mb: float = Field(256.0, gt=0)
    """The disk cache stores each modality in shard files of about this many MB and decodes
    one shard at a time, so memory stays flat however many cases there are (a cohort larger
    than memory trains with ``cache: disk``)."""

    @property
    def data_root(self) -> Path:
        return self.root if self.root is not None else self.manifest.parent
