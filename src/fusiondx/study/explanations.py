"""The study's "Which modality drives the prediction": for the winner and the best single model,
on the test split, each modality's mean |Shapley value|, its Shapley share of the metric and its
permutation importance
(:mod:`fusiondx.explanations.importance`), from the first replicate's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusiondx.explanations.importance import (
    mean_abs_shapley,
    metric_shapley,
    permutation_importance,
)
from fusiondx.explanations.shapley import MAX_MODALITIES
from fusiondx.study.analysis import EntryData
from fusiondx.tasks import TaskInfo, task_type

REPEATS = 10
"""Shuffles per modality of the permutation importance."""


def explanations(
    loaded: dict[str, EntryData],
    ids: Sequence[str],
    info: TaskInfo,
    metric: str,
    *,
    repeats: int = REPEATS,
    seed: int = 0,
) -> dict[str, Any] | None:
    """``{"metric", "repeats", "entries": {id: {...}}}`` for the entries ``ids``, or None when the
    task is not a classification (Shapley values explain a class probability)."""
    if not task_type(info).is_classification:
        return None
    tt = task_type(info)
    out: dict[str, Any] = {}
    for eid in dict.fromkeys(ids):
        d = loaded.get(eid)
        if d is None or not d.jobs:
            continue
        model, store, idx = load_test(d.jobs[0].run_dir)
        if len(model.modalities) > MAX_MODALITIES or len(idx) == 0:
            continue
        y = store.targets[info.name][idx]
        head = model.task_head(info.name)

        def score(raw: Any, head: Any = head, y: np.ndarray = y) -> float:
            return tt.score(info, head, raw, y, metric)

        entry = mean_abs_shapley(model, info, store, idx)
        entry["metric_share"] = metric_shapley(model, info, store, idx, score)
        entry["permutation"] = permutation_importance(
            model, info, store, idx, score, repeats=repeats, seed=seed
        )
        entry["run_dir"] = str(d.jobs[0].run_dir)
        out[eid] = entry
    if not out:
        return None
    return {
        "metric": metric,
        "repeats": repeats,
        "explained": (
            f"probability of '{info.classes[1]}'"
            if info.type == "binary"
            else "probability of each case's predicted class"
        ),
        "entries": out,
    }


def load_test(run_dir: Any) -> tuple[Any, Any, np.ndarray]:
    """A run's model, its cases decoded with its preprocessing, and its test cases."""
    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine.rundir import RunDir

    run = RunDir(run_dir)
    cfg, model, state = run.load()
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=True
    )
    store = prepared.store
    store.split = run.splits(store.ids)
    return model, store, store.indices("test")
