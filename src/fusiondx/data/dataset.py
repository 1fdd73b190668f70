"""Batches straight out of the case store: one array slice per modality, no per-sample collate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fusiondx.data.store import CaseStore


class CaseDataset(Dataset):
    """The cases of one split; ``__getitems__`` returns a ready batch (DataLoader's batched fetch).

    Args:
        store: decoded arrays of every case.
        indices: which cases (rows of the store) this dataset serves.
        augment: per-modality random transforms applied to each present case (training only).
    """

    def __init__(self, store: CaseStore, indices: np.ndarray,
                 augment: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.augment = augment or {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: Sequence[int]) -> dict[str, Any]:
        batch = self.store.batch(self.indices[np.asarray(positions, dtype=np.int64)])
        for m, fn in self.augment.items():
            col = self.store.modalities.index(m)
            x = batch["inputs"][m]
            for i in torch.nonzero(batch["mask"][:, col]).flatten().tolist():
                x[i] = fn(x[i])
        return batch

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self.__getitems__([position])


def to_device(x: Any, device: torch.device) -> Any:
    """A batch's inputs (a tensor, or a dict of them per modality) on ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return {k: to_device(v, device) for k, v in x.items()}


def _seed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream (they start as copies)."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    seed = int(torch.initial_seed() % 2**32)  # differs per worker, fixed by the loader's generator
    for fn in getattr(info.dataset, "augment", {}).values():
        if hasattr(fn, "set_random_state"):
            fn.set_random_state(seed)


def _passthrough(batch: dict[str, Any]) -> dict[str, Any]:
    return batch


def make_loader(dataset: CaseDataset, *, batch_size: int, shuffle: bool, seed: int,
                num_workers: int = 0) -> DataLoader:
    """A DataLoader whose batches come whole from ``CaseDataset.__getitems__``."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      collate_fn=_passthrough, num_workers=num_workers,
                      persistent_workers=num_workers > 0, worker_init_fn=_seed_worker)
