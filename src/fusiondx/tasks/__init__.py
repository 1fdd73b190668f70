"""Task types, one per module; importing this package registers every one of them.

``task_type(info)`` gives the :class:`TaskType` of a task; ``infer_task`` reads a configured
task's type and classes from the manifest. See :mod:`fusiondx.tasks._base` for the contract.
"""

from __future__ import annotations

from fusiondx.registry import import_modules
from fusiondx.tasks._base import Example, LabelSource, Scorer, Shown, TaskInfo, TaskType
from fusiondx.tasks._lookup import (
    candidate_types,
    config_type,
    head_types,
    infer_task,
    served_by,
    task_type,
)

import_modules(__name__, __path__)

__all__ = [
    "Example",
    "LabelSource",
    "Scorer",
    "Shown",
    "TaskInfo",
    "TaskType",
    "candidate_types",
    "config_type",
    "head_types",
    "infer_task",
    "served_by",
    "task_type",
]
