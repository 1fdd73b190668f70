"""Gradient-boosted trees on the tabular values as they are."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference


@register_reference(
    "hgb", reference="Ke et al., LightGBM, NeurIPS 2017 (scikit-learn's HistGradientBoosting)"
)
class GradientBoostingReference(Reference):
    """Histogram gradient boosting on a tabular block, values as they are, missing as missing.

    The usual strongest model on small tables (Grinsztajn et al., NeurIPS 2022); empty cells are
    routed by the trees, so missingness is learned rather than imputed.
    """

    inputs = "tabular"
    family = "trees"
    features_label = "values"

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, str(group), self.family)
