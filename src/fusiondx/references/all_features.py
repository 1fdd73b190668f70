"""Early fusion the simple way: every modality's reference features side by side, one linear model."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_parts
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference
from fusiondx.tasks import TaskInfo


@register_reference("all_features", reference="Baltrusaitis et al., TPAMI 2019 (early fusion)")
class AllFeaturesReference(Reference):
    """One regularised linear model on every modality's reference features side by side.

    L2-regularised logistic regression (ridge, Cox for other tasks) on the concatenated tabular
    values with missing indicators, TF-IDF of the texts, downsampled pixels, signal features and
    which modalities are present: early fusion the simple way.
    """

    inputs = "all"
    family = "linear"
    features_label = "all modalities' features"

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        if len(table.modalities()) < 2:
            return "one modality: nothing to fuse"
        return super().unavailable(table, group, task)

    def features(self, table: CaseTable, group: str | None) -> Any:
        from sklearn.compose import ColumnTransformer

        parts = [p for m in table.modalities() for p in group_parts(table, m, self.family)]
        return ColumnTransformer(parts, sparse_threshold=0.3)
