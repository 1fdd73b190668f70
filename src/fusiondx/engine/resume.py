"""What `fit --resume` needs beyond weights, optimiser and scheduler for an exact continuation.

Lightning's checkpoint holds the model, the optimiser, the LR scheduler, the loop counters and
each callback's ``state_dict``. It does not hold the random streams an epoch draws from: the
shuffle order of the training loader, dropout (the global torch generator), modality dropout
and image augmentation. A run resumed without them trains its remaining epochs on the streams
of epoch 0 again: a valid run, but not the one that was interrupted, so a study that was killed
and rerun would report other numbers than one that was not.

:class:`RandomStreams` saves every stream with each checkpoint and restores them on resume.
Checkpoints are written after the epoch's last training batch and validation, so the streams
saved are exactly those the next epoch starts from.

Not restorable: with ``train.num_workers > 0`` the loader workers live across epochs and hold
their own copy of the augmentation streams, and the loader draws their base seed from the
shuffle generator only when it first starts them; after a resume the workers start afresh, so
the shuffle order and augmentation of the remaining epochs differ from an uninterrupted run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from fusiondx.engine import runfolder


def _numpy_state(rs: np.random.RandomState | None = None) -> dict[str, Any]:
    # Stored as tensors and plain numbers: checkpoints are loaded with weights_only=True.
    name, key, pos, has_gauss, gauss = rs.get_state() if rs is not None else np.random.get_state()
    return {
        "name": str(name),
        "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_state(state: Mapping[str, Any], rs: np.random.RandomState | None = None) -> None:
    value = (
        state["name"],
        state["key"].numpy().astype(np.uint32),
        state["pos"],
        state["has_gauss"],
        state["gauss"],
    )
    if rs is None:
        np.random.set_state(value)
    else:
        rs.set_state(value)


def _augment_generators(fn: Any) -> list[np.random.RandomState]:
    """The numpy generators of an augmentation (MONAI transforms keep one each, as ``R``)."""
    compose = getattr(fn, "_compose", None)
    if compose is None:
        return []
    parts = [compose, *getattr(compose, "transforms", [])]
    return [p.R for p in parts if isinstance(getattr(p, "R", None), np.random.RandomState)]


class RandomStreams(L.Callback):
    """Saves and restores every random stream a training epoch draws from.

    Args:
        generators: named torch generators (the training loader's, modality dropout's).
        augment: per-modality augmentations of the training loader (numpy generators inside).
    """

    def __init__(
        self, generators: Mapping[str, torch.Generator], augment: Mapping[str, Any] | None = None
    ) -> None:
        self.generators = dict(generators)
        self.augment = dict(augment or {})

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": random.getstate(),
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "augment": {
                k: [_numpy_state(r) for r in _augment_generators(fn)]
                for k, fn in self.augment.items()
            },
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        _set_numpy_state(state["numpy"])
        random.setstate(_as_tuple(state["python"]))
        for k, g in self.generators.items():
            if k in state["generators"]:
                g.set_state(state["generators"][k])
        for k, fn in self.augment.items():
            for r, s in zip(_augment_generators(fn), state["augment"].get(k, []), strict=False):
                _set_numpy_state(s, r)
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    # random.setstate wants tuples; a checkpoint may hand lists back.
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(trainer: L.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint``, whole or not at all: a process killed while saving leaves
    the previous checkpoint in place, never a truncated one that `--resume` cannot read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runfolder.write_whole(path, trainer.save_checkpoint, sync=True)


class PlateauCatchUp(L.Callback):
    """Gives ReduceLROnPlateau the step a resumed run would otherwise miss.

    Lightning steps a plateau scheduler at the very end of an epoch, after its checkpoint is
    written, and does not step it for that epoch on resume (the monitored metric is not in the
    checkpoint). The scheduler would then count one bad epoch fewer and lower the rate an epoch
    late. The metric is saved here with the checkpoint and the step made when training resumes.
    """

    KEY = "fusiondx_plateau_metrics"

    def __init__(self) -> None:
        self._pending: dict[str, float] | None = None
        self._epoch = -1

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        metrics = trainer.callback_metrics
        checkpoint[self.KEY] = {
            c.monitor: float(metrics[c.monitor])
            for c in trainer.lr_scheduler_configs
            if c.reduce_on_plateau and c.interval == "epoch" and c.monitor in metrics
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._pending = checkpoint.get(self.KEY)
        self._epoch = int(checkpoint.get("epoch", -1))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pending, self._pending = self._pending, None
        if not pending:
            return
        for c in trainer.lr_scheduler_configs:
            if (
                c.reduce_on_plateau
                and isinstance(c.scheduler, ReduceLROnPlateau)
                and c.interval == "epoch"
                and c.monitor is not None
                and c.monitor in pending
                and (self._epoch + 1) % c.frequency == 0
            ):
                c.scheduler.step(pending[c.monitor])
