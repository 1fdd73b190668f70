"""A new run's cases before any input is decoded: checked manifest, tasks, split and targets.

``label_cases(cfg)`` reads the manifest and reports every problem in its cells at once, fixes the
tasks (their classes, fitted on the training split), splits the cases (grouped by patient) and
encodes every task's targets, checking that the training split, and the validation split where
early stopping follows a ranking metric, hold the classes they need. It decodes no input, so a
study can split its cases, or a run size its data, without decoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.data.checks import check_cells
from fusiondx.data.labels import encode_targets, split_strata
from fusiondx.data.manifest import read_manifest, some_cases
from fusiondx.data.splits import check_splits, make_splits, patient_groups, splits_from_column
from fusiondx.errors import DataError, summarise
from fusiondx.tasks import TaskInfo, infer_task, task_type


@dataclass
class Labelled:
    """A new run's cases before any file is decoded: manifest, ids, tasks, targets, split."""

    df: pd.DataFrame
    ids: pd.Series
    tasks: list[TaskInfo]
    targets: dict[str, np.ndarray]
    split: np.ndarray
    notes: list[str] = field(default_factory=list)
    strata: np.ndarray | None = None
    """What the split was stratified on (see ``split_strata``)."""


def label_cases(cfg: Config) -> Labelled:
    """Read and check the manifest, fix the tasks, split the cases and encode the targets."""
    path = cfg.data.manifest
    df = read_manifest(path, sep=cfg.data.sep, id_column=cfg.data.id_column)
    problems: list[DataError] = []
    check_cells(df, cfg, path, problems)  # every problem in the cells, before any file is read
    if problems:
        raise summarise(problems, path)
    ids = df[cfg.data.id_column].astype(str)
    tasks = [infer_task(t, df, cfg) for t in cfg.tasks]
    strata = _strata(tasks[0], df, ids, path, cfg)
    split = assign_splits(cfg, df, ids, strata, task_type(tasks[0]).stratum_names(tasks[0]))
    try:
        tasks = [
            task_type(t).fit(t, df, split == "train", tc)
            for t, tc in zip(tasks, cfg.tasks, strict=True)
        ]
    except DataError as err:
        raise err.at(file=path) from None
    targets = task_targets(tasks, df, ids, path, cfg)
    _check_train_classes(tasks, targets, split)
    _check_val_classes(tasks, targets, split, cfg)
    return Labelled(df, ids, tasks, targets, split, _patient_notes(cfg, df, ids), strata)


def _patient_notes(cfg: Config, df: pd.DataFrame, ids: pd.Series) -> list[str]:
    col = cfg.data.patient_column
    _, blank = patient_groups(df, col, ids)
    if not blank:
        return []
    n = len(blank)
    return [
        f"{n} case{'s have' if n > 1 else ' has'} no {col}: each is treated as its own patient "
        f"(e.g. {some_cases(blank)}); fill {col} where cases share a patient, so that they stay "
        "in one split"
    ]


def task_targets(
    tasks: list[TaskInfo], df: pd.DataFrame, ids: pd.Series, path: Path, cfg: Config
) -> dict[str, np.ndarray]:
    """Every task's encoded targets; a problem is reported in the manifest at ``path``."""
    out = {}
    for t in tasks:
        try:
            out[t.name] = encode_targets(t, df, ids, cfg)
        except DataError as err:
            raise (err.at(file=path) if err.file is None else err) from None
    return out


def _strata(
    task: TaskInfo, df: pd.DataFrame, ids: pd.Series, path: Path, cfg: Config
) -> np.ndarray:
    """What the split is stratified on: the first task's class, or (other tasks) whether a case
    has a lesion / an event, read from the label cells without decoding any file."""
    try:
        return split_strata(task, df, ids, cfg)
    except DataError as err:
        raise (err.at(file=path) if err.file is None else err) from None


def assign_splits(
    cfg: Config,
    df: pd.DataFrame,
    ids: pd.Series,
    strata: np.ndarray,
    names: dict[str, str] | None = None,
) -> np.ndarray:
    """train / val / test per case: from the split column, or made (stratified on ``strata``,
    grouped by patient) as ``data.split`` says; ``names`` (see ``stratum_names``) are the strata
    every made split must hold."""
    patients, _ = patient_groups(df, cfg.data.patient_column, ids)
    if cfg.data.split.column:
        split = splits_from_column(df, cfg.data.split.column, cfg.data.id_column)
    else:
        sc = cfg.data.split
        split = make_splits(
            strata,
            sc.fractions,
            cfg.seed if sc.seed is None else sc.seed,
            groups=patients,
            stratify=sc.stratify,
            folds=sc.folds,
            fold=sc.fold,
            names=names,
        )
    check_splits(split, ids, patients)
    return split


def _check_train_classes(
    tasks: list[TaskInfo], targets: dict[str, np.ndarray], split: np.ndarray
) -> None:
    train = split == "train"
    for t in tasks:
        task_type(t).check_train(t, targets[t.name][train])


def _check_val_classes(
    tasks: list[TaskInfo], targets: dict[str, np.ndarray], split: np.ndarray, cfg: Config
) -> None:
    """The monitored binary or multiclass task's validation split needs two classes when early
    stopping and the best checkpoint follow a ranking metric (AUROC, the default): with one
    class it is undefined, and training would keep its first epoch."""
    es = cfg.train.early_stopping
    name = es.monitor if es is not None and es.monitor else "auroc"
    task_name, _, monitor = name.rpartition("/")
    t = next((x for x in tasks if x.name == task_name), tasks[0])
    if not task_type(t).class_indices or monitor not in ("auroc", "auprc"):
        return
    y = targets[t.name].astype(int)
    val = y[split == "val"]
    if len(val) == 0 or len(np.unique(val)) >= 2:
        return
    counts = "; ".join(
        f"{s}: "
        + ", ".join(f"'{c}' {int(np.sum(y[split == s] == k))}" for k, c in enumerate(t.classes))
        for s in ("train", "val", "test")
    )
    how = f"column '{cfg.data.split.column}'" if cfg.data.split.column else "the made split"
    raise DataError(
        f"The validation split of task '{t.name}' holds a single class (cases per split and class, "
        f"from {how}: {counts}), so validation {monitor.upper()}, which early stopping and the best "
        "checkpoint follow, is undefined.",
        column=cfg.data.split.column or t.label[0],
        fix="put cases of every class in val (fix the split column, or let FusionDx split), or set "
        "train.early_stopping.monitor: loss",
    )
