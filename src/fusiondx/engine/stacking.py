"""Late fusions that learn on validation data (``late_stacking``): fitting and honest scoring."""

from __future__ import annotations

import copy

import numpy as np
import torch

from fusiondx.data.dataset import to_device
from fusiondx.data.store import CaseStore
from fusiondx.engine.datamodule import INFERENCE_BATCH, case_loader
from fusiondx.models.late import LateFusion
from fusiondx.models.multimodal import MultimodalModel

FOLDS = 5


def fit_on_validation(
    model: MultimodalModel, store: CaseStore, idx: np.ndarray, batch_size: int
) -> dict[str, torch.Tensor]:
    """Fit every meta-learner of ``model`` on the cases ``idx``; return their cross-fitted outputs.

    Returns task -> (N, K) logits for the cases ``idx`` in which each case was scored by a
    meta-learner fitted on the other folds, so validation metrics (and any choice made on
    them) are not inflated by fitting on the same cases. Empty when no fusion fits on
    validation data.
    """
    if not isinstance(model, LateFusion):
        return {}
    fusions = model.meta_learners()
    if not fusions or len(idx) == 0:
        return {}
    probs, mask = _modality_probs(model, store, idx, batch_size)
    folds = np.random.default_rng(0).permutation(len(idx)) % FOLDS
    out = {}
    for task, fusion in fusions.items():
        target = torch.from_numpy(store.targets[task][idx])
        cross = torch.empty(len(idx), fusion.out_dim)
        for k in range(FOLDS):
            held = torch.from_numpy(folds == k)
            if not held.any():
                continue
            meta = copy.deepcopy(fusion)
            meta.fit_meta({m: p[~held] for m, p in probs[task].items()}, mask[~held], target[~held])
            with torch.no_grad():
                cross[held] = meta({m: p[held] for m, p in probs[task].items()}, mask[held])
        fusion.fit_meta(probs[task], mask, target)
        out[task] = model.task_head(task).from_probs(cross)
    return out


@torch.no_grad()
def _modality_probs(
    model: LateFusion, store: CaseStore, idx: np.ndarray, batch_size: int
) -> tuple[dict[str, dict[str, torch.Tensor]], torch.Tensor]:
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, dict[str, list[torch.Tensor]]] = {}
    masks = []
    for batch in case_loader(store, idx, max(batch_size, INFERENCE_BATCH)):
        for task, per_mod in model.modality_probs(to_device(batch["inputs"], device)).items():
            for m, p in per_mod.items():
                chunks.setdefault(task, {}).setdefault(m, []).append(p.cpu().float())
        masks.append(batch["mask"])
    probs = {t: {m: torch.cat(v) for m, v in per.items()} for t, per in chunks.items()}
    return probs, torch.cat(masks).bool()
