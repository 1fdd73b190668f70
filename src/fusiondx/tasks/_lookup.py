"""Finding a task's type: by its name, by the head the config names, or by reading the labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from fusiondx.errors import ConfigError, did_you_mean
from fusiondx.registry import TASK_TYPES

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig
    from fusiondx.tasks._base import TaskInfo, TaskType


def task_type(of: str | TaskInfo) -> TaskType:
    """The task type of this name (or of this task), ready to use."""
    return TASK_TYPES.get(of if isinstance(of, str) else of.type).cls()


def served_by(head: str) -> list[str]:
    """Names of the task types a head serves (registry order)."""
    return [e.name for e in TASK_TYPES.entries() if head in e.cls.heads]


def head_types(task: TaskConfig) -> list[TaskType]:
    """The task types the task's head serves; a head no type names is an error."""
    names = served_by(task.head)
    if not names:
        known = sorted({h for e in TASK_TYPES.entries() for h in e.cls.heads})
        raise ConfigError(
            f"Task '{task.name}' has head '{task.head}', which serves no task type."
            f"{did_you_mean(task.head, known)}",
            fix=f"use one of the heads: {', '.join(known)} (see `fusiondx list heads`)",
        )
    return [task_type(n) for n in names]


def candidate_types(task: TaskConfig) -> list[TaskType]:
    """What the task may be before its labels are read: its declared type, or the types of its
    head that apply without being declared (one head may serve several: the labels decide)."""
    types = head_types(task)
    if task.type is None:
        return [t for t in types if not t.declared_only]
    if task.type not in [t.name for t in types]:
        raise ConfigError(
            f"Task '{task.name}' has type '{task.type}', which head '{task.head}' does not do.",
            fix=f"use type {' or '.join(t.name for t in types)}, or drop type to infer it",
        )
    return [task_type(task.type)]


def config_type(task: TaskConfig) -> TaskType:
    """The task's declared type, or the first its head serves undeclared (what is known before the
    labels are read: the candidate types of one head agree on everything asked of them then)."""
    types = candidate_types(task)
    if not types:
        raise ConfigError(
            f"Task '{task.name}' ({task.head}) needs tasks[].type.",
            fix=f"set type to one of: {', '.join(t.name for t in head_types(task))}",
        )
    return types[0]


def infer_task(task: TaskConfig, df: pd.DataFrame, cfg: Config | None = None) -> TaskInfo:
    """Fix the task's type and class list: declared in the config, or read from the manifest."""
    return config_type(task).infer(task, df, cfg)
