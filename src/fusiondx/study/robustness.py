"""Trained models scored with modalities taken away at test time (no retraining)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fusiondx.data.targets import TaskInfo
from fusiondx.study import stats
from fusiondx.study.analysis import EntryData


def robustness(d: EntryData, info: TaskInfo, metric: str, modalities: Sequence[str],
               rates: Sequence[float]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Mean over replicates of the test metric (a) with each modality removed from every case
    and (b) with each modality removed from a growing fraction of cases.

    Returns ``({"none": v, m: v, ...}, {"rates": [...], m: [v per rate], ...})``. Removing a
    modality the model does not use leaves it unchanged: a single-modality model is scored the
    same without the others, which is the point of the comparison.
    """
    removed: dict[str, list[float]] = {}
    curves: dict[str, list[list[float]]] = {}
    for job in d.jobs:
        model, store, idx = _load(job.run_dir)
        y = store.targets[info.name][idx]
        base = torch.from_numpy(store.mask[idx].copy())
        cols = {m: i for i, m in enumerate(model.modalities)}

        def score(mask: torch.Tensor, model=model, store=store, idx=idx, y=y) -> float:  # noqa: ANN001
            return _metric(model, store, idx, mask, info, metric, y)

        removed.setdefault("none", []).append(score(base))
        for m in modalities:
            mask = base.clone()
            if m in cols:
                mask[:, cols[m]] = False
            removed.setdefault(m, []).append(score(mask))
            row = []
            for r in rates:
                mask = base.clone()
                if m in cols:
                    hide = _chosen(len(idx), r, f"{m}:{r}")
                    mask[hide, cols[m]] = False
                row.append(score(mask))
            curves.setdefault(m, []).append(row)
    rem = {k: float(np.nanmean(v)) for k, v in removed.items()}
    rate_curves: dict[str, list[float]] = {"rates": [float(r) for r in rates]}
    rate_curves |= {m: np.nanmean(np.array(v), axis=0).tolist() for m, v in curves.items()}
    return rem, rate_curves


def _chosen(n: int, rate: float, key: str) -> np.ndarray:
    """The same cases lose a modality for every model at a given rate (a paired comparison)."""
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    k = int(round(rate * n))
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def _load(run_dir: Any) -> tuple[Any, Any, np.ndarray]:
    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine.run import _saved_splits, load_run

    cfg, model, state = load_run(run_dir)
    prepared = prepare_with_state(cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=True)
    store = prepared.store
    store.split = _saved_splits(run_dir, store)
    return model, store, store.indices("test")


def _metric(model: Any, store: Any, idx: np.ndarray, mask: torch.Tensor, info: TaskInfo,
            metric: str, y: np.ndarray) -> float:
    from fusiondx.engine.run import predict_outputs

    outputs = predict_outputs(model, store, idx, 512, mask=mask)[info.name]
    if not info.is_classification:
        value = model.task_head(info.name).evaluate(outputs, torch.from_numpy(y))[metric]
        return float(value)
    probs = model.task_head(info.name).to_probs(outputs).numpy()
    if info.type == "binary":
        probs = probs[:, 0]
    return stats.metric_value(metric, y, probs, info.type)
