"""A trained model's answers for the cases of a store, and the predictions table written from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.data.dataset import to_device
from fusiondx.data.groups import group_column
from fusiondx.data.store import CaseStore
from fusiondx.engine.datamodule import INFERENCE_BATCH, case_loader
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo, task_type


@torch.no_grad()
def loader_outputs(
    model: MultimodalModel, batches: Iterable[dict[str, Any]], mask: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The model's predictions (``model.predict``) for every batch, concatenated, in eval mode.

    ``mask`` (cases, M) replaces the batches' presence masks, row by row, e.g. to hide modalities.
    """
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[torch.Tensor]] = {}
    start = 0
    for batch in batches:
        n = len(batch["case_id"])
        present = batch["mask"] if mask is None else mask[start : start + n]
        start += n
        for t, v in model.predict(to_device(batch["inputs"], device), present.to(device)).items():
            chunks.setdefault(t, []).append(v.cpu())
    return {t: torch.cat(v) for t, v in chunks.items()}


def predict_outputs(
    model: MultimodalModel,
    store: CaseStore,
    idx: np.ndarray,
    batch_size: int,
    mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The model's predictions for the cases ``idx``, in order, in eval mode: logits for
    classification, values, risks, boxes, mask logits or generated token ids for other heads.

    Batches hold ``max(batch_size, 256)`` cases. ``mask`` (len(idx), M) replaces the stored
    presence mask, e.g. to hide modalities.
    """
    return loader_outputs(model, case_loader(store, idx, max(batch_size, INFERENCE_BATCH)), mask)


def predictions_frame(
    model: MultimodalModel,
    tasks: list[TaskInfo],
    store: CaseStore,
    idx: np.ndarray,
    predictions: dict[str, Any],
) -> pd.DataFrame:
    """The predictions table of these cases: case id, split, and every task's columns (the
    truth where labels are known, the model's answers), as its task type writes them
    (:meth:`fusiondx.tasks.TaskType.prediction_columns`), and each ``fairness.columns``
    subgroup as ``group:<column>``. The study reads them back, so it can
    score and bootstrap any run without its model."""
    cols: dict[str, Any] = {"case_id": store.ids[idx], "split": store.split[idx]}
    for t in tasks:
        tt = task_type(t)
        y = store.targets.get(t.name) if store.targets else None
        y = None if y is None else y[idx]
        cols |= tt.prediction_columns(
            t, tt.head_output(t, model.task_head(t.name), predictions[t.name]), y
        )
    for name, labels in store.groups.items():
        cols[group_column(name)] = labels[idx]
    return pd.DataFrame(cols)


def evaluate_outputs(
    model: MultimodalModel,
    tasks: list[TaskInfo],
    store: CaseStore,
    idx: np.ndarray,
    outputs: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Task -> its head's metrics of ``outputs`` against the stored targets of the cases ``idx``."""
    return {
        t.name: model.task_head(t.name).evaluate(
            outputs[t.name], torch.from_numpy(store.targets[t.name][idx])
        )
        for t in tasks
    }
