"""The LightningModule: losses, modality dropout, optimiser, LR decay, validation metrics.

The training objective is the task losses plus any fusion's auxiliary loss (contrastive,
reconstruction, KL; already weighted by the fusion's own option); validation reports the task
losses alone, so ``val/loss`` means the same for every strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from fusiondx.config import TrainConfig
from fusiondx.engine.distributed import cpu, gather
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo


def drop_modalities(
    mask: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hide each present modality with probability ``p``, never every modality of a case.

    Where a case would lose all its modalities, one of its present ones (chosen at random) is kept.
    """
    if p <= 0:
        return mask
    keep = torch.rand(mask.shape, generator=generator) >= p
    dropped = mask & keep.to(mask.device)
    emptied = ~dropped.any(dim=1) & mask.any(dim=1)
    if emptied.any():
        scores = (
            torch.rand(mask.shape, generator=generator).to(mask.device).masked_fill(~mask, -1.0)
        )
        rescue = torch.zeros_like(mask).scatter_(1, scores.argmax(dim=1, keepdim=True), True)
        dropped = torch.where(emptied.unsqueeze(1), rescue & mask, dropped)
    return dropped


class FusionTask(L.LightningModule):
    """Trains a :class:`MultimodalModel` on one or more tasks.

    Task losses are summed with the fixed ``task_weights``, or (``train.task_weighting:
    uncertainty``) each scaled by a learned precision, ``exp(-s_t) * L_t + s_t`` (Kendall et al.,
    2018), so that a task with a noisier loss does not drown the others. Validation metrics of
    every task are logged as ``val/<task>/<metric>``; those of the first task also as
    ``val/<metric>``. ``val/loss`` is the fixed-weight sum, comparable between epochs.

    Attributes:
        modality_dropout_generator: the random stream of modality dropout (saved with each
            checkpoint by ``RandomStreams``, so a resumed run drops the same modalities).
        epoch_metrics: after each validation, the epoch's row of training curves (epoch, lr,
            train/loss, val/loss, learned task weights, every validation metric); None before.
    """

    def __init__(
        self,
        model: MultimodalModel,
        tasks: Sequence[TaskInfo],
        train: TrainConfig,
        task_weights: dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.tasks = list(tasks)
        self.train_cfg = train
        self.task_weights = task_weights or {t.name: 1.0 for t in tasks}
        self.log_vars = (
            torch.nn.Parameter(torch.zeros(len(self.tasks)))
            if train.task_weighting == "uncertainty"
            else None
        )
        self.modality_dropout_generator = torch.Generator().manual_seed(seed + 7919)
        # Frozen pretrained encoders stay in eval mode: their normalisation statistics and
        # dropout are those they were pretrained with.
        self.frozen = [
            m for m, e in model.encoders.items() if not any(p.requires_grad for p in e.parameters())
        ]
        self._val: list[tuple[dict[str, Any], dict[str, torch.Tensor], torch.Tensor]] = []
        self._val_loss = [0.0, 0]
        self._train_loss = [0.0, 0]  # running sum and case count of this epoch
        self.epoch_metrics: dict[str, Any] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets this around every hook of every step, and nn.Module's __setattr__
        # first looks through parameters, buffers and submodules: about 4% of a small model's
        # training step. It is a plain attribute, so plain assignment is the same.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        return self.model(batch["inputs"], batch["mask"], batch["targets"])

    def _losses(
        self, outputs: dict[str, Any], targets: dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        return [
            self.model.task_head(t.name).loss(outputs[t.name], targets[t.name]) for t in self.tasks
        ]

    def _train_losses(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[torch.Tensor]:
        """Each task's training loss; a subclass may add terms (distillation does), while
        validation keeps the task losses alone."""
        return self._losses(outputs, batch["targets"])

    def _fixed(self, losses: list[torch.Tensor]) -> torch.Tensor:
        return sum(
            (self.task_weights[t.name] * loss for t, loss in zip(self.tasks, losses, strict=True)),
            torch.zeros((), device=self.device),
        )

    def _objective(self, losses: list[torch.Tensor]) -> torch.Tensor:
        if self.log_vars is None:
            return self._fixed(losses)
        s = self.log_vars
        return sum(
            (
                self.task_weights[t.name] * torch.exp(-s[i]) * loss + s[i]
                for i, (t, loss) in enumerate(zip(self.tasks, losses, strict=True))
            ),
            torch.zeros((), device=self.device),
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        for m in self.frozen:
            self.model.encoders[m].eval()
        mask = drop_modalities(
            batch["mask"], self.train_cfg.modality_dropout, self.modality_dropout_generator
        )
        outputs = self.model(batch["inputs"], mask, batch["targets"])
        loss = self._objective(self._train_losses(outputs, batch))
        aux = self.model.aux_loss()
        if aux is not None:
            loss = loss + aux
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}; "
                "lower train.lr or check the inputs for extreme values"
            )
        # Summed here and logged once per epoch: Lightning's per-step logging costs more than a
        # small model's step on a CPU.
        n = len(batch["case_id"])
        self._train_loss[0] += float(loss.detach()) * n
        self._train_loss[1] += n
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_loss = [0.0, 0]

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self._train_mean(), prog_bar=True, sync_dist=False)

    @property
    def _world(self) -> int:
        trainer = self._trainer
        return trainer.world_size if trainer is not None else 1

    def _train_mean(self) -> float:
        """This epoch's training loss per case, over every training process's cases."""
        total, n = self._train_loss
        if self._world > 1:  # a collective: every process calls it at the same point
            summed = self.trainer.strategy.reduce(
                torch.tensor([total, float(n)], device=self.device), reduce_op="sum"
            )
            total, n = float(summed[0]), int(summed[1])
        return total / max(n, 1)

    def on_validation_epoch_start(self) -> None:
        self.epoch_metrics = None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        outputs, preds = self.model.run(batch["inputs"], batch["mask"], batch["targets"])
        n = len(batch["case_id"])
        self._val_loss[0] += float(self._fixed(self._losses(outputs, batch["targets"]))) * n
        self._val_loss[1] += n
        self._val.append(
            (
                {k: _detach(v) for k, v in preds.items()},
                {k: v.detach() for k, v in batch["targets"].items()},
                batch["index"],
            )
        )

    def _gathered(self) -> tuple[list[Any], float, float]:
        """This epoch's validation outputs and loss sum and count, of every process's shard.

        Every process then scores the whole validation split the same way, so the metrics
        logged, the best epoch and early stopping agree between processes without more messages.
        """
        chunks, (total, n) = self._val, self._val_loss
        if self._world == 1:
            return chunks, total, n
        parts = gather((cpu(chunks), total, n), self._world)
        chunks = [c for part in parts for c in part[0]]
        if chunks:  # the cases in store order, as one process would have scored them
            index = torch.cat([c[2] for c in chunks])
            order = torch.argsort(index)
            preds = {
                t.name: _take(_cat([o[t.name] for o, _, _ in chunks]), order) for t in self.tasks
            }
            targets = {
                t.name: torch.cat([y[t.name] for _, y, _ in chunks])[order] for t in self.tasks
            }
            chunks = [(preds, targets, index[order])]
        return chunks, sum(p[1] for p in parts), sum(p[2] for p in parts)

    def on_validation_epoch_end(self) -> None:
        chunks, total, n = self._gathered()
        self._val = []
        self._val_loss = [0.0, 0]
        if not chunks:
            return
        preds = {t.name: _cat([o[t.name] for o, _, _ in chunks]) for t in self.tasks}
        targets = {t.name: torch.cat([y[t.name] for _, y, _ in chunks]) for t in self.tasks}
        val_loss = total / max(n, 1)
        self.log("val/loss", val_loss, prog_bar=True, sync_dist=False)
        row: dict[str, Any] = {
            "epoch": self.current_epoch,
            "lr": current_lr(self),
            "train/loss": self._train_mean(),
            "val/loss": float(val_loss),
        }
        if self.log_vars is not None:
            for t, s in zip(self.tasks, self.log_vars.detach().tolist(), strict=True):
                row[f"weight/{t.name}"] = math.exp(-s)
        for i, t in enumerate(self.tasks):
            head = self.model.task_head(t.name)
            metrics = head.evaluate(preds[t.name], targets[t.name])
            for k, v in metrics.items():
                if isinstance(v, float):
                    # NaN stays NaN: BestEpoch judges such an epoch by its loss and counts it.
                    self.log(f"val/{t.name}/{k}", v)
                    row[f"val/{t.name}/{k}"] = v
                    if i == 0:
                        self.log(f"val/{k}", v, prog_bar=k == head.primary_metric)
        self.epoch_metrics = row

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.parameters(), self.train_cfg)


def current_lr(module: L.LightningModule) -> float:
    """The learning rate of the module's optimiser now (NaN before it has one)."""
    try:
        return float(module.trainer.optimizers[0].param_groups[0]["lr"])
    except (AttributeError, IndexError, RuntimeError):
        return float("nan")


def configure_optimizers(params: Any, cfg: TrainConfig) -> Any:
    """Adam and the configured learning-rate decay, as Lightning takes them."""
    # fused: one kernel per step instead of a dozen small ops per parameter tensor, which
    # on a CPU costs more than a small model's backward.
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.lr_decay == "none":
        return opt
    if cfg.lr_decay == "cosine":
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=cfg.epochs, eta_min=cfg.lr * 0.01
        )
    elif cfg.lr_decay == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.epochs // 3), gamma=0.3)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.3, patience=2)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def _detach(x: Any) -> Any:
    return x.detach() if isinstance(x, torch.Tensor) else x


def _take(x: Any, order: torch.Tensor) -> Any:
    return x[order] if isinstance(x, torch.Tensor) else [x[i] for i in order.tolist()]


def _cat(chunks: list[Any]) -> Any:
    return (
        torch.cat(chunks)
        if isinstance(chunks[0], torch.Tensor)
        else [c for ch in chunks for c in ch]
    )
