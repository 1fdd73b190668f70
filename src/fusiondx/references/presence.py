"""Shortcut probe: a model that sees only which inputs each case has."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference
from fusiondx.tasks import TaskInfo


@register_reference(
    "presence",
    reference="Geirhos et al., Shortcut learning in deep neural networks, "
    "Nat. Mach. Intell. 2020; Agniel et al., BMJ 2018 (the lab "
    "ordering pattern predicts survival)",
)
class PresenceProbe(Reference):
    """Gradient boosting on which inputs a case has, and nothing else (a shortcut probe).

    One 0/1 column per modality and per tabular cell.

    In hospitals what was *measured* is itself a signal (a troponin is ordered when a clinician
    suspects a heart attack). When this probe comes close to a fused model, the model may have
    learned the ordering pattern rather than the disease.
    """

    kind = "probe"
    inputs = "presence"
    family = "trees"
    features_label = "which inputs are present"

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        cols = table.groups["presence"].numeric
        if np.all(table.frame[cols].to_numpy() == 1.0):
            return "every case has every input: no presence pattern to learn"
        return super().unavailable(table, group, task)

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, "presence", self.family)
