"""Batches straight out of the case store: one array slice per modality, no per-sample collate."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fusiondx.data.store import CaseStore


class CaseDataset(Dataset):
    """The cases of one split; ``__getitems__`` returns a ready batch (DataLoader's batched fetch).

    Args:
        store: decoded arrays of every case.
        indices: which cases (rows of the store) this dataset serves.
        augment: per-modality random transforms applied to each present case (training only).
    """

    def __init__(
        self,
        store: CaseStore,
        indices: np.ndarray,
        augment: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
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


class EpochShuffle(Sampler[int]):
    """A random order of ``n`` cases that depends only on the seed and the epoch.

    A resumed run must shuffle its remaining epochs as the interrupted run would have, however
    many times the trainer starts iterating (Lightning starts the loader once more when it
    resumes). The orders are those of ``DataLoader(shuffle=True, generator=<seeded>)``, so
    results stay what they were before resuming was exact: that loader draws from one generator
    a worker base seed when it starts its iterator (each epoch, or only the first with
    persistent workers), the permutation, and at the end of the epoch a second permutation of
    which it uses nothing. Epoch ``e`` replays the draws of the epochs before it from the last
    epoch served, so going forward costs two permutations per epoch.

    Several training processes (``world > 1``) draw the same order of all ``n`` cases; process
    ``rank`` serves every ``world``-th case of it from position ``rank``, the order padded by
    its own start to a multiple of ``world`` so that every process takes as many steps (DDP's
    gradient averaging waits for all of them). Batch ``k`` of the processes together then holds
    the cases of batch ``k`` of one process with a batch ``world`` times as large.

    Args:
        n: number of cases.
        seed: the run's seed.
        persistent_workers: the loader keeps its workers, so it draws a base seed only once.
        rank: this process's place among the training processes.
        world: the number of training processes.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        persistent_workers: bool = False,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.seed, self.persistent = n, seed, persistent_workers
        self.rank, self.world = rank, world
        self.epoch = 0
        self._start: tuple[int, torch.Tensor] = (0, torch.Generator().manual_seed(seed).get_state())

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each training epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def _draw(self, gen: torch.Generator, epoch: int) -> torch.Tensor:
        if epoch == 0 or not self.persistent:
            torch.empty((), dtype=torch.int64).random_(
                generator=gen
            )  # the loader's worker base seed
        return torch.randperm(self.n, generator=gen)

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        first, state = self._start
        if first > epoch:
            first, state = 0, torch.Generator().manual_seed(self.seed).get_state()
        gen = torch.Generator()
        gen.set_state(state)
        for e in range(first, epoch):
            self._draw(gen, e)
            torch.randperm(
                self.n, generator=gen
            )  # RandomSampler's last, empty slice draws one more
        self._start = (epoch, gen.get_state())
        order = self._draw(gen, epoch)
        if self.world > 1:
            padded = torch.cat([order, order[: len(self) * self.world - self.n]])
            order = padded[self.rank :: self.world]
        return iter(order.tolist())


def make_loader(
    dataset: CaseDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> DataLoader:
    """A DataLoader whose batches come whole from ``CaseDataset.__getitems__``; ``shard``
    (rank, world) with ``shuffle``: this training process's share of each epoch's order."""
    gen = torch.Generator().manual_seed(seed)  # seeds the workers (their augmentation streams)
    rank, world = shard
    sampler = (
        EpochShuffle(len(dataset), seed, persistent_workers=num_workers > 0, rank=rank, world=world)
        if shuffle
        else None
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        generator=gen,
        # torch types collate_fn as taking a list; with __getitems__ it gets that whole batch.
        collate_fn=_passthrough,  # type: ignore[arg-type]
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=_seed_worker,
    )
