"""The LightningModule of ``fusiondx pretrain``: encoders trained by self-supervised objectives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import lightning as L
import torch
from torch import nn

from fusiondx.config import TrainConfig
from fusiondx.engine.task import configure_optimizers, current_lr
from fusiondx.objectives import Objective


class PretrainTask(L.LightningModule):
    """Trains the modality encoders on the sum of the configured objectives; no label is read.

    Validation logs each objective's mean loss (``val/<objective>``) and their sum
    (``val/loss``, what the kept epoch is chosen by); each epoch's row of the training curves
    is :attr:`epoch_metrics`, as in :class:`~fusiondx.engine.task.FusionTask`.

    Args:
        encoders: one encoder per modality, sorted.
        objectives: name -> objective, each given every modality's embedding.
        train: optimiser, epochs, learning-rate decay.
    """

    def __init__(
        self, encoders: nn.ModuleDict, objectives: nn.ModuleDict, train: TrainConfig
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.objectives = objectives
        self.train_cfg = train
        self.modalities = sorted(encoders.keys())
        self._train_loss = [0.0, 0]
        self._val: dict[str, list[float]] = {}
        self.epoch_metrics: dict[str, Any] | None = None

    def embed(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The embedding (B, D) of each modality ``inputs`` holds."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities if m in inputs}

    def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Objective name -> its (weighted) loss on ``batch``."""
        emb = self.embed(batch["inputs"])
        return {
            name: cast(Objective, obj)(emb, batch["mask"], batch["inputs"])
            for name, obj in self.objectives.items()
        }

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = torch.stack(list(self.losses(batch).values())).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The pretraining loss became {loss.item()} at epoch {self.current_epoch}, "
                f"batch {batch_idx}; lower train.lr or check the inputs for extreme values"
            )
        n = len(batch["case_id"])
        self._train_loss[0] += float(loss.detach()) * n
        self._train_loss[1] += n
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_loss = [0.0, 0]

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self._train_loss[0] / max(self._train_loss[1], 1), prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        self.epoch_metrics = None
        self._val = {name: [0.0, 0] for name in self.objectives}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        n = len(batch["case_id"])
        for name, loss in self.losses(batch).items():
            self._val[name][0] += float(loss) * n
            self._val[name][1] += n

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        means = {name: total / max(n, 1) for name, (total, n) in self._val.items()}
        val_loss = sum(means.values())
        self.log("val/loss", val_loss, prog_bar=True)
        row: dict[str, Any] = {
            "epoch": self.current_epoch,
            "lr": current_lr(self),
            "train/loss": self._train_loss[0] / max(self._train_loss[1], 1),
            "val/loss": float(val_loss),
        }
        for name, v in means.items():
            self.log(f"val/{name}", v)
            row[f"val/{name}"] = v
        self.epoch_metrics = row

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.parameters(), self.train_cfg)
