"""Regularised logistic (ridge, Cox) regression on the tabular values with missing indicators."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference


@register_reference(
    "logistic",
    reference="Hosmer & Lemeshow, Applied Logistic Regression; "
    "Van Buuren, Flexible Imputation of Missing Data (indicators)",
)
class LogisticReference(Reference):
    """L2-regularised logistic regression on a tabular block with missing indicators.

    Median-imputed, standardised numbers plus a missing indicator per column, one-hot categories.

    The clinical scoring model of record; ridge regression for values and a ridge Cox model for
    survival under the same features.
    """

    inputs = "tabular"
    family = "linear"
    features_label = "values + missing indicators"

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, str(group), self.family)
