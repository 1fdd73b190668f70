"""Whole sets of cases as one batch, predicted in chunks with any presence mask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fusiondx.data.dataset import to_device
from fusiondx.data.store import CaseStore
from fusiondx.models.multimodal import MultimodalModel

CHUNK = 256


def take(x: Any, idx: torch.Tensor | slice) -> Any:
    """Rows ``idx`` of a batch's inputs (a tensor or a dict of tensors)."""
    if isinstance(x, Mapping):
        return {k: take(v, idx) for k, v in x.items()}
    return x[idx]


def store_batch(store: CaseStore, idx: np.ndarray) -> tuple[dict[str, Any], torch.Tensor]:
    """The inputs and presence mask (N, M) of the cases ``idx``, in order."""
    batch = store.batch(idx)
    return batch["inputs"], batch["mask"]


@torch.no_grad()
def predict_raw(
    model: MultimodalModel, inputs: Mapping[str, Any], mask: torch.Tensor, task: str
) -> torch.Tensor:
    """The task's raw outputs (logits) for every case, in chunks, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(mask), CHUNK):
        rows = slice(start, start + CHUNK)
        x = to_device(take(inputs, rows), device)
        out.append(model.predict(x, mask[rows].to(device))[task].cpu())
    return torch.cat(out)
