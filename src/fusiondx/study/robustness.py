"""Trained models scored with modalities taken away at test time (no retraining)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fusiondx.study.analysis import EntryData
from fusiondx.study.explanations import load_test
from fusiondx.tasks import TaskInfo, task_type


def robustness(
    d: EntryData,
    info: TaskInfo,
    metric: str,
    modalities: Sequence[str],
    rates: Sequence[float],
    pooled: bool = False,
    complete: float | None = None,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The test metric (a) with each modality removed from every case and (b) with each modality
    removed from a growing fraction of cases, computed as the study table is: the mean over
    seeds of each seed's metric, or (folds) the metric of the pooled out-of-fold predictions.

    Returns ``({"none": v, m: v, ...}, {"rates": [...], m: [v per rate], ...})``. Nothing removed
    (``none``, rate 0) is ``complete``, the table's own value from the very same predictions,
    when given. Removing a modality the model does not use leaves it unchanged: a
    single-modality model is scored the same without the others, which is the point.
    """
    scenarios: dict[tuple[str, float], list[tuple[Any, np.ndarray]]] = {}
    head = None
    for job in d.jobs:
        model, store, idx = load_test(job.run_dir)
        head = head or model
        y = store.targets[info.name][idx]
        base = torch.from_numpy(store.mask[idx].copy())
        cols = {m: i for i, m in enumerate(model.modalities)}

        def add(
            key: tuple[str, float], mask: torch.Tensor, model=model, store=store, idx=idx, y=y
        ) -> None:  # noqa: ANN001
            scenarios.setdefault(key, []).append((_outputs(model, store, idx, mask, info), y))

        add(("none", 1.0), base)
        for m in modalities:
            for r in sorted({1.0, *rates}):
                mask = base.clone()
                if m in cols:
                    mask[_chosen(len(idx), r, f"{m}:{r}") if r < 1.0 else slice(None), cols[m]] = (
                        False
                    )
                add((m, r), mask)

    def value(key: tuple[str, float]) -> float:
        if complete is not None and (key[0] == "none" or key[1] == 0.0):
            return float(complete)
        parts = scenarios[key]
        if pooled:
            parts = [(_cat([o for o, _ in parts]), np.concatenate([t for _, t in parts]))]
        return float(np.nanmean([_metric(head, o, t, info, metric) for o, t in parts]))

    rem = {"none": value(("none", 1.0))} | {m: value((m, 1.0)) for m in modalities}
    rate_curves: dict[str, list[float]] = {"rates": [float(r) for r in rates]}
    rate_curves |= {m: [value((m, r)) for r in rates] for m in modalities}
    return rem, rate_curves


def _chosen(n: int, rate: float, key: str) -> np.ndarray:
    """The same cases lose a modality for every model at a given rate (a paired comparison)."""
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    k = int(round(rate * n))
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def _outputs(model: Any, store: Any, idx: np.ndarray, mask: torch.Tensor, info: TaskInfo) -> Any:
    from fusiondx.engine.inference import predict_outputs

    return predict_outputs(model, store, idx, 512, mask=mask)[info.name]


def _cat(chunks: list[Any]) -> Any:
    if isinstance(chunks[0], torch.Tensor):
        return torch.cat(chunks)
    return np.concatenate(chunks)


def _metric(model: Any, outputs: Any, y: np.ndarray, info: TaskInfo, metric: str) -> float:
    return task_type(info).score(info, model.task_head(info.name), outputs, y, metric)
