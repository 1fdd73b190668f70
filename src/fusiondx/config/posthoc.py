"""The ``posthoc`` section: what ``fit`` fits on the validation outputs of a classifier after
training: probability calibration, the decision threshold and conformal prediction sets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from fusiondx.config._strict import _Strict

_RULES = ("youden", "f1")


class ConformalConfig(_Strict):
    """Split-conformal prediction sets, fitted on the validation cases (single-label tasks)."""

    coverage: float = Field(0.9, gt=0, lt=1)
    """Share of cases whose set should hold the true class (e.g. 0.9)."""
    score: Literal["lac", "aps"] = "lac"
    """Non-conformity score: 'lac' (1 - probability of the class; smallest sets) or 'aps'
    (adaptive prediction sets: total probability of the classes at least as probable)."""
    mondrian: bool = False
    """Class-conditional (Mondrian) sets: the coverage holds within every true class."""


class PosthocConfig(_Strict):
    """Calibration, threshold and conformal sets of classification tasks (other task types are
    unaffected). Fitted on validation; stored in the run's posthoc.json and applied by `fit`'s
    test metrics, `evaluate`, `predict`, `export` and the study."""

    calibration: Literal["temperature", "none"] = "temperature"
    """'temperature': temperature scaling (one temperature for a binary task, one per label for
    multilabel; vector scaling, a scale and bias per class, for multiclass); 'none' keeps the
    model's probabilities."""
    threshold: str | float | dict[str, float] = "youden"
    """Binary and multilabel decision threshold: 'youden' (Youden's J), 'f1' (F1-optimal),
    {sensitivity: 0.9} (the highest threshold reaching that validation sensitivity), or a fixed
    number (0.5 as before). Multiclass tasks predict the most probable class."""
    conformal: ConformalConfig | None = ConformalConfig()
    """Prediction sets and the refer flag (binary and multiclass tasks); null: none."""

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"threshold must be one of {_RULES}, a number or {{sensitivity: s}}")
        if isinstance(v, (int, float)):
            if not 0 < v < 1:
                raise ValueError(f"a fixed threshold must lie between 0 and 1, got {v}")
            return float(v)
        if isinstance(v, str):
            if v not in _RULES:
                raise ValueError(
                    f"threshold '{v}' is not a rule; use 'youden', 'f1', a number between 0 and "
                    "1 or {sensitivity: 0.9}"
                )
            return v
        if isinstance(v, dict):
            if set(v) != {"sensitivity"}:
                raise ValueError(
                    f"a threshold target takes one key, 'sensitivity' (e.g. {{sensitivity: 0.9}}), "
                    f"got {sorted(v)}"
                )
            s = v["sensitivity"]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 1:
                raise ValueError(f"the target sensitivity must lie in (0, 1], got {s!r}")
            return {"sensitivity": float(s)}
        raise ValueError(
            f"threshold must be 'youden', 'f1', a number or {{sensitivity: s}}, got {v!r}"
        )
