"""Labels -> target tensors, with the class list fixed before training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusiondx.config import TaskConfig
from fusiondx.data.manifest import case_of, line_of
from fusiondx.errors import ConfigError, DataError

if TYPE_CHECKING:
    from fusiondx.config import Config

# Spelled-out negatives: with two classes and no declared order, these are the negative class.
_NEGATIVE_NAMES = {"0", "false", "no", "negative", "neg", "healthy", "normal", "none", "control",
                   "absent", "benign", "n"}


CLASSIFICATION_TYPES = ("binary", "multiclass", "multilabel")


@dataclass(frozen=True)
class TaskInfo:
    """A task's type, label columns and what was fixed before training; saved with the run.

    ``classes`` is the class list of classification tasks (empty otherwise); ``image`` the image
    modality of localization and segmentation tasks; ``state`` what was fitted on the training
    split (a generation task's vocabulary, a survival task's time bins, ...).
    """

    name: str
    type: str  # binary | multiclass | multilabel | regression | survival | box | mask | text
    classes: tuple[str, ...]
    label: tuple[str, ...]
    label_separator: str | None = None
    image: str | None = None
    state: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_classification(self) -> bool:
        return self.type in CLASSIFICATION_TYPES

    @property
    def num_outputs(self) -> int:
        return 1 if self.type == "binary" else len(self.classes)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["classes"], d["label"] = list(self.classes), list(self.label)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInfo:
        return cls(name=str(d["name"]), type=str(d["type"]), classes=tuple(d["classes"]),
                   label=tuple(d["label"]), label_separator=d.get("label_separator"),
                   image=d.get("image"), state=dict(d.get("state") or {}))


def infer_task(task: TaskConfig, df: pd.DataFrame, cfg: Config | None = None) -> TaskInfo:
    """Fix the task's type and class list: declared in the config, or read from the manifest."""
    from fusiondx.registry import HEADS
    types = tuple(HEADS.get(task.head).meta.get("tasks", CLASSIFICATION_TYPES))
    if task.type is not None and task.type not in types:
        raise ConfigError(f"Task '{task.name}' has type '{task.type}', which head '{task.head}' does not do.",
                          fix=f"use type {' or '.join(types)}, or drop type to infer it")
    if not set(types) & set(CLASSIFICATION_TYPES):
        from fusiondx.data.task_targets import infer_other_task

        return infer_other_task(task, types[0], df, cfg)
    cols = (task.label,) if isinstance(task.label, str) else tuple(task.label)
    # A list of label columns, even of one, means one 0/1 column per class; a single column name
    # means the classes are written in the cell (split by label_separator).
    per_column = not isinstance(task.label, str) and task.label_separator is None
    multilabel = task.type == "multilabel" or len(cols) > 1 or task.label_separator is not None
    if multilabel:
        if per_column:
            classes = tuple(task.classes or cols)
            if len(classes) != len(cols):
                raise ConfigError(f"Task '{task.name}' lists {len(classes)} classes for {len(cols)} label columns.",
                                  fix="give one class name per label column, or omit classes")
        else:
            sep = task.label_separator or ";"
            seen = sorted({p.strip() for v in df[cols[0]].dropna() for p in str(v).split(sep) if p.strip()})
            classes = tuple(task.classes or [c for c in seen if c.lower() != "none"])
        return TaskInfo(task.name, "multilabel", classes, cols, None if per_column else task.label_separator or ";")
    values = df[cols[0]].dropna().astype(str).str.strip()
    if task.classes:
        classes = tuple(task.classes)
    else:
        uniq = sorted(values.unique())
        if len(uniq) == 2 and task.positive_class is None:
            neg = [u for u in uniq if u.lower() in _NEGATIVE_NAMES]
            if len(neg) == 1:
                uniq = [neg[0], next(u for u in uniq if u != neg[0])]
        classes = tuple(uniq)
    if task.positive_class is not None:
        if task.positive_class not in classes or len(classes) != 2:
            raise ConfigError(f"positive_class '{task.positive_class}' of task '{task.name}' is not one of two classes {list(classes)}.",
                              fix="name one of the two classes, or drop positive_class for multiclass tasks")
        classes = tuple(c for c in classes if c != task.positive_class) + (task.positive_class,)
    if len(classes) < 2:
        raise DataError(f"Task '{task.name}' has only one class ({list(classes)}) in column '{cols[0]}'.",
                        column=cols[0], fix="a classifier needs at least two classes in the labels")
    ttype = task.type or ("binary" if len(classes) == 2 else "multiclass")
    if ttype == "binary" and len(classes) != 2:
        raise ConfigError(f"Task '{task.name}' is declared binary but has {len(classes)} classes {list(classes)}.",
                          fix="set type: multiclass, or declare two classes")
    return TaskInfo(task.name, ttype, classes, cols)


def encode_targets(info: TaskInfo, df: pd.DataFrame, ids: pd.Series | None, cfg: Config | None = None, *,
                   errors: list[DataError] | None = None) -> np.ndarray:
    """(N,) float for binary, (N,) int64 for multiclass, (N, K) float for multilabel; other task
    types as described in :mod:`fusiondx.data.task_targets`.

    A classification label outside the declared classes raises; with ``errors`` given, every
    such cell is appended there instead (and empty cells, which the manifest checks report,
    are skipped)."""
    if not info.is_classification:
        from fusiondx.data.task_targets import encode_other

        return encode_other(info, df, ids, cfg)

    def bad(err: DataError) -> None:
        if errors is None:
            raise err
        errors.append(err)

    if info.type == "multilabel":
        return _encode_multilabel(info, df, ids, bad, skip_empty=errors is not None)
    col = info.label[0]
    empty = df[col].isna().to_numpy()
    values = df[col].astype(str).str.strip().to_numpy()
    index = {c: i for i, c in enumerate(info.classes)}
    out = np.zeros(len(values), dtype=np.int64)
    for pos, v in enumerate(values):
        if v in index:
            out[pos] = index[v]
        elif not (errors is not None and empty[pos]):
            bad(DataError(
                f"The label '{v}' is not one of the declared classes {list(info.classes)}.",
                row=line_of(pos), column=col, case_id=case_of(ids, pos),
                fix="correct the label, or add the class to tasks[].classes"))
    return out.astype(np.float32) if info.type == "binary" else out


def _encode_multilabel(info: TaskInfo, df: pd.DataFrame, ids: pd.Series | None,
                       bad: Callable[[DataError], None], *, skip_empty: bool) -> np.ndarray:
    out = np.zeros((len(df), len(info.classes)), dtype=np.float32)
    if info.label_separator is None:
        for k, col in enumerate(info.label):
            empty = df[col].isna().to_numpy()
            for pos, v in enumerate(df[col].astype(str).str.strip()):
                if v in ("0", "1", "0.0", "1.0"):
                    out[pos, k] = float(v)
                elif not (skip_empty and empty[pos]):
                    bad(DataError(f"A multilabel column holds '{v}', not 0 or 1.", row=line_of(pos),
                                  column=col, case_id=case_of(ids, pos), fix="use 0 or 1 in each label column"))
        return out
    index = {c: i for i, c in enumerate(info.classes)}
    sep = info.label_separator or ";"
    for pos, v in enumerate(df[info.label[0]].astype(str)):
        for part in (p.strip() for p in v.split(sep)):
            if not part or part.lower() == "none":
                continue
            if part not in index:
                if skip_empty and pd.isna(df[info.label[0]].iloc[pos]):
                    continue
                bad(DataError(
                    f"The label '{part}' is not one of the declared classes {list(info.classes)}.",
                    row=line_of(pos), column=info.label[0], case_id=case_of(ids, pos),
                    fix="correct the label, or add it to tasks[].classes"))
                continue
            out[pos, index[part]] = 1.0
    return out


def stratification_key(info: TaskInfo, y: np.ndarray) -> np.ndarray:
    """A per-case string to stratify splits on (the class; for multilabel, the rarest positive;
    for other tasks whether the case has a lesion, an event, or which quartile its value is in)."""
    if not info.is_classification:
        from fusiondx.data.task_targets import other_stratification_key

        return other_stratification_key(info, y)
    if info.type != "multilabel":
        return y.astype(np.int64).astype(str)
    freq = y.sum(axis=0)
    order = np.argsort(freq)
    keys = np.full(len(y), "none", dtype=object)
    for k in order[::-1]:  # rarest last so it wins
        keys[y[:, k] > 0] = str(k)
    return keys.astype(str)


def stratum_names(info: TaskInfo) -> dict[str, str] | None:
    """Readable names of the strata of :func:`stratification_key` (and ``split_key``) that every
    held-out split must hold, because the task's metric is undefined without them; None where a
    split may lack a stratum (multilabel's rarest-label key, regression quartiles, text)."""
    if info.type in ("binary", "multiclass"):
        return {str(k): c for k, c in enumerate(info.classes)}
    if info.type in ("box", "mask"):
        return {"lesion": "with a lesion", "none": "without a lesion"}
    if info.type == "survival":
        return {"1": "with an event", "0": "censored"}
    return None

