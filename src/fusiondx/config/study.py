"""The ``study`` section: what `fusiondx study` and `fusiondx search` compare and how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fusiondx.config._strict import _Strict


class StudyConfig(_Strict):
    """What `fusiondx study` compares; command-line options override these."""

    strategies: list[str] | Literal["all"] = "all"
    """Fusion strategies to train beside the single-modality baselines (names from
    `fusiondx list fusions`), or all of them."""
    seeds: int = Field(3, ge=1)
    """Training seeds per entry (run seed, run seed + 1, ...); the split stays fixed."""
    folds: int | None = Field(None, ge=2)
    """Cross-validation folds instead of seeds: every case is scored once, out of fold."""
    ablation: bool = True
    """Retrain the winning strategy without each modality in turn."""
    robustness: bool = True
    """Score the winner and the best single modality with modalities removed at test time."""
    missing_rates: list[float] = [0.0, 0.25, 0.5, 0.75, 1.0]
    explain: bool = True
    """Per modality of the winner and the best single model, on test: the mean |Shapley value|
    and the permutation importance (report section "Which modality drives the prediction")."""
    metric: str | None = None
    """Metric that chooses the winner (on validation data) and ranks the table; default the
    task's primary metric (auroc, iou, dice_lesion, bleu4, c_index, r2)."""
    task: str | None = None
    """Task the study compares on; the first task by default."""
    n_boot: int = Field(1000, ge=100)
    """Bootstrap replicates of the confidence intervals and the paired test."""
    jobs: int = Field(1, ge=1)
    """Trainings run in parallel processes (each gets cores / jobs threads)."""
    references: list[str] | Literal["all"] = "all"
    """scikit-learn references and shortcut probes trained beside the neural entries (names from
    `fusiondx list references`), all of them, or [] for none."""

    @field_validator("missing_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not 0.0 <= r <= 1.0 for r in v):
            raise ValueError(f"missing_rates must be fractions between 0 and 1, got {v}")
        return sorted(v)
