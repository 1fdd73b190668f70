"""Gradient-boosted trees on per-lead summary and spectral features of each record."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference


@register_reference(
    "signal_features",
    reference="Strodthoff et al., IEEE JBHI 2021 (feature baselines on PTB-XL); Welch 1967",
)
class SignalFeaturesReference(Reference):
    """Histogram gradient boosting on per-lead summary and spectral features of each record.

    Amplitude summary (mean, spread, percentiles, mean absolute slope), shape (skew, kurtosis),
    Welch band powers and dominant frequency, and the autocorrelation peak (the dominant period,
    e.g. the RR interval).

    Computed on the record at the configured rate and length but not normalised, so amplitudes
    (ST levels, R heights, lab values) keep their units.
    """

    inputs = "signal"
    family = "trees"
    features_label = "summary and spectral features"

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, str(group), self.family)
