"""A whole set of cases: each modality's mean |Shapley value|; its Shapley share of a metric
(the set function is the metric of the whole set with only some modalities allowed, as SAGE
(Covert et al., 2020) does for features with the loss); and its permutation importance
(Breiman, 2001): the drop of a metric when that modality is shuffled across the cases (its
input and presence move together, so the cases keep a realistic modality, just not their own).

The mean |Shapley| says how much a modality moves the probabilities, right or wrong; the share
of the metric says how much of the model's performance it earns, so a modality the model
overfitted (noise that moves predictions both ways) scores near zero there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fusiondx.data.store import CaseStore
from fusiondx.explanations._batches import predict_raw, store_batch, take
from fusiondx.explanations._target import class_probs
from fusiondx.explanations.shapley import check_size, shapley, shapley_from_values, subsets
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo


def explained_classes(info: TaskInfo, probs: np.ndarray) -> np.ndarray:
    """(N,) the class explained per case: a binary task's positive class, else the predicted one."""
    if info.type == "binary":
        return np.ones(len(probs), dtype=int)
    return probs.argmax(1)


def mean_abs_shapley(
    model: MultimodalModel, info: TaskInfo, store: CaseStore, idx: np.ndarray
) -> dict[str, Any]:
    """Each modality's mean |Shapley value| over the cases ``idx`` (and its mean signed value,
    and the share of cases that have it), with the mean base and prediction."""
    inputs, mask = store_batch(store, idx)
    head = model.task_head(info.name)
    full = class_probs(info, head, predict_raw(model, inputs, mask, info.name)).numpy()
    cls = torch.from_numpy(explained_classes(info, full))

    def value(masks: torch.Tensor) -> torch.Tensor:  # one coalition at a time: a whole test set
        rows = []
        for m in masks:
            p = class_probs(info, head, predict_raw(model, inputs, m, info.name))
            rows.append(p.gather(1, cls[:, None])[:, 0])
        return torch.stack(rows)

    phi, base, pred = shapley(value, mask)
    mods = list(model.modalities)
    return {
        "mean_abs": {m: float(np.abs(phi[:, j]).mean()) for j, m in enumerate(mods)},
        "mean": {m: float(phi[:, j].mean()) for j, m in enumerate(mods)},
        "present": {m: float(mask[:, j].float().mean()) for j, m in enumerate(mods)},
        "base": float(base.mean()),
        "prediction": float(pred.mean()),
        "cases": len(idx),
    }


def metric_shapley(
    model: MultimodalModel,
    info: TaskInfo,
    store: CaseStore,
    idx: np.ndarray,
    score: Callable[[torch.Tensor], float],
) -> dict[str, Any]:
    """Each modality's exact Shapley share of ``score`` over the cases ``idx``.

    The value of a coalition is the metric of every case predicted with only the coalition's
    modalities allowed (a case keeps missing what it lacks). The shares sum to the metric with
    every modality (``full``) minus the metric with none (``empty``: one constant prediction for
    every case, e.g. AUROC 0.5).

    Args:
        score: raw outputs of the cases (in order) -> the metric (higher is better).
    """
    inputs, mask = store_batch(store, idx)
    m = mask.shape[1]
    check_size(m)
    values = []
    for s in subsets(m):
        allowed = mask & s
        raw = predict_raw(model, inputs, allowed, info.name)
        if not allowed.any():
            # No input at all: the prediction is one constant, up to float noise that a rank
            # metric would read as an order of the cases.
            raw = raw.mean(0, keepdim=True).expand_as(raw)
        values.append(score(raw))
    v = np.asarray(values, dtype=float)
    phi = shapley_from_values(torch.from_numpy(v)[None, :])[0]
    return {
        "share": {mod: float(phi[j]) for j, mod in enumerate(model.modalities)},
        "empty": float(v[0]),
        "full": float(v[-1]),
    }


def permutation_importance(
    model: MultimodalModel,
    info: TaskInfo,
    store: CaseStore,
    idx: np.ndarray,
    score: Callable[[torch.Tensor], float],
    *,
    repeats: int = 10,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Each modality's metric drop when shuffled across the cases ``idx``: the mean over
    ``repeats`` shuffles, and the 2.5 and 97.5 percentiles of the drops (``low``, ``high``).

    Args:
        score: raw outputs of the cases (in order) -> the metric (higher is better).
    """
    inputs, mask = store_batch(store, idx)
    full = score(predict_raw(model, inputs, mask, info.name))
    rng = np.random.default_rng(seed)
    out = {}
    for j, m in enumerate(model.modalities):
        drops = []
        for _ in range(repeats):
            perm = torch.from_numpy(rng.permutation(len(idx)))
            shuffled = dict(inputs)
            shuffled[m] = take(inputs[m], perm)
            pmask = mask.clone()
            pmask[:, j] = mask[perm, j]
            drops.append(full - score(predict_raw(model, shuffled, pmask, info.name)))
        d = np.asarray(drops, dtype=float)
        out[m] = {
            "mean": float(np.nanmean(d)),
            "low": float(np.nanpercentile(d, 2.5)),
            "high": float(np.nanpercentile(d, 97.5)),
            "repeats": repeats,
        }
    return out
