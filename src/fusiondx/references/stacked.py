"""Late fusion the simple way: the per-modality references stacked by a cross-fitted meta-model."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.references._base import Reference
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference
from fusiondx.tasks import TaskInfo, task_type


@register_reference("stacked", reference="Wolpert, Stacked generalization, Neural Networks 1992")
class StackedReference(Reference):
    """Stacking of the best reference of each modality under a cross-fitted linear meta-model.

    scikit-learn's stacking over each modality's reference chosen and tuned on validation, with a
    logistic (ridge) meta-model fitted on their out-of-fold predictions over the training cases
    (5 folds, grouped by patient where there are patients): late fusion the simple way.
    """

    inputs = "all"
    family = "linear"
    features_label = "stacked per-modality references"
    task_types = ("binary", "multiclass", "multilabel", "regression")
    needs_base = True

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        if len(table.modalities()) < 2:
            return "one modality: nothing to fuse"
        if task_type(task).no_stacking:
            return task_type(task).no_stacking
        return super().unavailable(table, group, task)

    def label(self, group: str | None, task: TaskInfo) -> str:
        return self.features_label

    def candidates(
        self,
        table: CaseTable,
        group: str | None,
        task: TaskInfo,
        seed: int,
        balanced: bool,
        y_train: np.ndarray,
        groups: np.ndarray | None,
        base: dict[str, tuple[Reference, dict[str, Any]]] | None = None,
    ) -> list[tuple[dict[str, Any], Any]]:
        if not base or len(base) < 2:
            raise ValueError("stacking needs a fitted reference for at least two modalities")
        estimators = []
        for g, (ref, params) in base.items():
            grid = ref.candidates(table, g, task, seed, balanced, y_train, groups)
            estimators.append((g, next(p for q, p in grid if q == params)))
        return task_type(task).stacking(estimators, _folds(task, y_train, groups))


def _folds(
    task: TaskInfo, y: np.ndarray, groups: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three (or two, for a rare class) stratified folds of the training cases, by patient."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    g = np.arange(len(y)) if groups is None else groups
    if task_type(task).class_indices:
        k = int(
            min(
                3,
                np.bincount(y.astype(int)).max(initial=0),
                min(c for c in np.bincount(y.astype(int)) if c > 0),
            )
        )
        k = max(2, min(k, len(np.unique(g))))
        return list(
            StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=0).split(
                y, y.astype(int), g
            )
        )
    return list(GroupKFold(n_splits=max(2, min(3, len(np.unique(g))))).split(y, y, g))
