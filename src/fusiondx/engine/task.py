"""The LightningModule: losses, modality dropout, optimiser, LR decay, validation metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from fusiondx.config import TrainConfig
from fusiondx.data.targets import TaskInfo
from fusiondx.models.multimodal import MultimodalModel


def drop_modalities(mask: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hide each present modality with probability ``p``, never every modality of a case.

    Where a case would lose all its modalities, one of its present ones (chosen at random) is kept.
    """
    if p <= 0:
        return mask
    keep = torch.rand(mask.shape, generator=generator) >= p
    dropped = mask & keep.to(mask.device)
    emptied = ~dropped.any(dim=1) & mask.any(dim=1)
    if emptied.any():
        scores = torch.rand(mask.shape, generator=generator).to(mask.device).masked_fill(~mask, -1.0)
        rescue = torch.zeros_like(mask).scatter_(1, scores.argmax(dim=1, keepdim=True), True)
        dropped = torch.where(emptied.unsqueeze(1), rescue & mask, dropped)
    return dropped


def append_curve(path: Path, row: dict[str, Any]) -> None:
    """Add one epoch to the training curves, replacing rows of this epoch and later.

    Rows from later epochs can exist after an interrupted run is resumed from an earlier
    checkpoint; the file is small, so it is rewritten whole each epoch.
    """
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if len(old):
        old = old[old["epoch"] < row["epoch"]]
    frame = pd.concat([old, pd.DataFrame([row])], ignore_index=True) if len(old) else pd.DataFrame([row])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


class FusionTask(L.LightningModule):
    """Trains a :class:`MultimodalModel` on one or more tasks (losses summed with task weights).

    Validation metrics of every task are logged as ``val/<task>/<metric>``; those of the first
    task also as ``val/<metric>``, which early stopping and checkpointing monitor.
    """

    def __init__(self, model: MultimodalModel, tasks: Sequence[TaskInfo], train: TrainConfig,
                 task_weights: dict[str, float] | None = None, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.tasks = list(tasks)
        self.train_cfg = train
        self.task_weights = task_weights or {t.name: 1.0 for t in tasks}
        self._gen = torch.Generator().manual_seed(seed + 7919)
        self._val: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []
        self._train_loss = [0.0, 0]  # running sum and case count of this epoch
        self.curves_path: Path | None = None

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model(batch["inputs"], batch["mask"])

    def _loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        for t in self.tasks:
            loss = self.model.task_head(t.name).loss(outputs[t.name], targets[t.name])
            total = total + self.task_weights[t.name] * loss
        return total

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        mask = drop_modalities(batch["mask"], self.train_cfg.modality_dropout, self._gen)
        outputs = self.model(batch["inputs"], mask)
        loss = self._loss(outputs, batch["targets"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}; "
                "lower train.lr or check the inputs for extreme values")
        n = len(batch["case_id"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self._train_loss[0] += float(loss.detach()) * n
        self._train_loss[1] += n
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_loss = [0.0, 0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        outputs = self.model(batch["inputs"], batch["mask"])
        self._val.append(({k: v.detach() for k, v in outputs.items()},
                          {k: v.detach() for k, v in batch["targets"].items()}))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        outputs = {t.name: torch.cat([o[t.name] for o, _ in self._val]) for t in self.tasks}
        targets = {t.name: torch.cat([y[t.name] for _, y in self._val]) for t in self.tasks}
        self._val.clear()
        val_loss = self._loss(outputs, targets)
        self.log("val/loss", val_loss, prog_bar=True)
        row: dict[str, Any] = {"epoch": self.current_epoch, "lr": self._lr(),
                               "train/loss": self._train_loss[0] / max(self._train_loss[1], 1),
                               "val/loss": float(val_loss)}
        for i, t in enumerate(self.tasks):
            metrics = self.model.task_head(t.name).evaluate(outputs[t.name], targets[t.name])
            for k, v in metrics.items():
                if isinstance(v, float):
                    v = v if math.isfinite(v) else 0.0  # NaN would stall early stopping
                    self.log(f"val/{t.name}/{k}", v)
                    row[f"val/{t.name}/{k}"] = v
                    if i == 0:
                        self.log(f"val/{k}", v, prog_bar=k in ("auroc", "accuracy"))
        if self.curves_path is not None and not self.trainer.sanity_checking:
            append_curve(self.curves_path, row)

    def _lr(self) -> float:
        try:
            return float(self.trainer.optimizers[0].param_groups[0]["lr"])
        except (AttributeError, IndexError, RuntimeError):
            return float("nan")

    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        opt = torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.lr_decay == "none":
            return opt
        if cfg.lr_decay == "cosine":
            sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.lr * 0.01)
        elif cfg.lr_decay == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.epochs // 3), gamma=0.3)
        else:
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.3, patience=2)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
