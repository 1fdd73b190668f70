"""The case store's splits as Lightning dataloaders: what fit, evaluate and predict iterate over.

Batches come whole out of the store (:class:`~fusiondx.data.dataset.CaseDataset`), so there is
no collate and, by default, no loader workers. The training loader shuffles with
:class:`~fusiondx.data.dataset.EpochShuffle`, whose order depends only on the seed and the epoch:
what makes ``fit --resume`` continue exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from fusiondx.config import Config
from fusiondx.data.dataset import CaseDataset, make_loader, to_device
from fusiondx.data.store import CaseStore

INFERENCE_BATCH = 256  # cases per batch at least, when nothing is trained: fewer, larger steps


def image_augmentations(cfg: Config) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Per image modality with flips, rotations or scaling configured: its random transform,
    seeded with the run's seed (training batches only)."""
    augment: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for m in cfg.modalities:
        if m.kind == "image":
            a = m.preprocessing.augment
            if a.flip or a.rotate or a.scale:
                from fusiondx.data.augment import RandImageAugment  # MONAI import: ~5 s

                fn = RandImageAugment(
                    flip=a.flip,
                    rotate=a.rotate,
                    scale=a.scale,
                    spatial_dims=len(m.preprocessing.size),
                )
                fn.set_random_state(cfg.seed)
                augment[m.name] = fn
    return augment


def case_loader(store: CaseStore, indices: np.ndarray, batch_size: int) -> DataLoader:
    """The cases ``indices`` of ``store`` in order, ``batch_size`` a batch, nothing random."""
    return make_loader(CaseDataset(store, indices), batch_size=batch_size, shuffle=False, seed=0)


class CaseDataModule(L.LightningDataModule):
    """Train, val, test and predict dataloaders over a :class:`CaseStore`'s splits.

    Args:
        store: decoded arrays of every case, with their split (``store.split``).
        batch_size: cases per training and validation batch.
        seed: the run's seed (the shuffle order of every epoch).
        num_workers: loader workers of the training and validation loaders.
        augment: per-modality random transforms of training batches (the RNGs that
            ``RandomStreams`` saves with each checkpoint).
        predict_indices: the cases ``predict_dataloader`` serves (default: every case).
    """

    def __init__(
        self,
        store: CaseStore,
        *,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        augment: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
        predict_indices: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.augment = augment or {}
        self.predict_indices = np.arange(len(store)) if predict_indices is None else predict_indices

    @classmethod
    def from_config(
        cls, cfg: Config, store: CaseStore, *, train: bool = True, **kwargs: Any
    ) -> CaseDataModule:
        """The run's loaders as ``cfg.train`` configures them; ``train=False`` builds no augmentation."""
        return cls(
            store,
            batch_size=cfg.train.batch_size,
            seed=cfg.seed,
            num_workers=cfg.train.num_workers,
            augment=image_augmentations(cfg) if train else None,
            **kwargs,
        )

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, world) of this training process; (0, 1) alone or outside a Trainer."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        """The training split, shuffled per epoch (EpochShuffle), augmented; with several
        processes, this process's shard of each epoch's order."""
        return make_loader(
            CaseDataset(self.store, self.store.indices("train"), self.augment),
            batch_size=self.batch_size,
            shuffle=True,
            seed=self.seed,
            num_workers=self.num_workers,
            shard=self.shard,
        )

    def val_dataloader(self) -> DataLoader:
        """The validation split in order, in inference-sized batches (nothing is trained on
        them: fewer, larger steps); with several processes, every ``world``-th case from
        ``rank`` (not padded: :class:`~fusiondx.engine.task.FusionTask` gathers the shards and
        scores each case once)."""
        rank, world = self.shard
        return make_loader(
            CaseDataset(self.store, self.store.indices("val")[rank::world]),
            batch_size=self.inference_batch_size,
            shuffle=False,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def test_dataloader(self) -> DataLoader:
        """The test split in order, in inference-sized batches."""
        return self.inference_loader(self.store.indices("test"))

    def predict_dataloader(self) -> DataLoader:
        """``predict_indices`` in order, in inference-sized batches."""
        return self.inference_loader(self.predict_indices)

    def inference_loader(self, indices: np.ndarray) -> DataLoader:
        """The cases ``indices`` in order, in inference-sized batches, nothing random."""
        return case_loader(self.store, indices, self.inference_batch_size)

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """Move a batch's tensors to ``device``; on the CPU, the batch as it is."""
        # Batches are built on the CPU; Lightning's generic walk over every case id string of
        # every batch costs ~0.5 ms a step, more than a small model's forward.
        if device.type == "cpu":
            return batch
        return {
            **batch,
            "index": batch["index"].to(device),
            "inputs": to_device(batch["inputs"], device),
            "mask": batch["mask"].to(device),
            "targets": to_device(batch["targets"], device),
        }

    @property
    def inference_batch_size(self) -> int:
        """Cases per batch where nothing is trained: at least ``INFERENCE_BATCH``."""
        return max(self.batch_size, INFERENCE_BATCH)
