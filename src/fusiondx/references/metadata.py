"""Shortcut probe: a model that sees only the acquisition and bookkeeping columns."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference
from fusiondx.tasks import TaskInfo


@register_reference(
    "metadata",
    reference="Zech et al., PLOS Medicine 2018 (hospital and scanner "
    "shortcuts in chest radiograph models)",
)
class MetadataProbe(Reference):
    """Gradient boosting on the acquisition and bookkeeping columns alone (a shortcut probe).

    The columns ``data.metadata_columns`` names (site, scanner, view, follow-up number, ...),
    none of which should tell the disease.

    When this probe comes close to a fused model, the model may be reading the hospital, the
    device or the workflow instead of the patient.
    """

    kind = "probe"
    inputs = "metadata"
    family = "trees"
    features_label = "acquisition and bookkeeping columns"

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        if "metadata" not in table.groups:
            return "no data.metadata_columns in the config"
        return super().unavailable(table, group, task)

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, "metadata", self.family)
