"""Which epoch a run keeps, and when it stops: the monitored validation metric, ties broken by loss.

Lightning's ModelCheckpoint and EarlyStopping compare the monitored metric alone. A metric can
stay exactly flat for several epochs while the model still learns: BLEU of greedy decoding
writes the most common findings for every case until the decoder starts to condition on its
input, and AUROC of a near-constant model barely moves. Both callbacks then see no improvement,
keep epoch 0 and stop after ``patience`` epochs: an untrained model, scored as if it were a
baseline. Here an epoch is better when its metric is better, or when the metric ties and the
validation loss is lower; patience counts only the epochs that are neither.

An epoch whose monitored metric is undefined (NaN: e.g. AUROC of a validation split with one
class, which the data checks refuse up front) is judged by its loss alone. That fallback is
never silent: the epochs are counted in ``undefined_epochs``, which ``fit`` writes to
``metrics.json`` and the study reports.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L

from fusiondx.config import Config
from fusiondx.engine.resume import save_checkpoint
from fusiondx.errors import ConfigError


def monitor(cfg: Config) -> tuple[str, str]:
    """The logged validation metric that early stopping and the best checkpoint follow, and
    its mode: ``train.early_stopping.monitor``, else the first task's head's primary metric."""
    from fusiondx.evaluation.directions import LOWER_IS_BETTER
    from fusiondx.registry import HEADS

    es = cfg.train.early_stopping
    name = (
        es.monitor
        if es is not None and es.monitor
        else HEADS.get(cfg.tasks[0].head).cls.primary_metric
    )
    tasks = [t.name for t in cfg.tasks]
    if "/" in name and name.split("/", 1)[0] not in tasks:
        raise ConfigError(
            f"train.early_stopping.monitor '{name}' names task '{name.split('/', 1)[0]}', "
            f"which is not in the config.",
            fix=f"use '<task>/<metric>' with a task of {tasks}",
        )
    metric = name.split("/")[-1]
    mode = (es.mode if es is not None and es.mode else None) or (
        "min" if metric == "loss" or metric in LOWER_IS_BETTER else "max"
    )
    return f"val/{name}", mode


class BestEpoch(L.Callback):
    """Saves the best epoch to ``path`` and every epoch to ``last`` (what ``--resume`` continues
    from), and stops after ``patience`` epochs without progress.

    Args:
        path: where the best epoch's checkpoint is written (replaced at each improvement).
        last: where each finished epoch's checkpoint is written.
        monitor: the logged validation metric, e.g. ``val/auroc`` or ``val/loss``.
        mode: ``max`` or ``min`` for the monitored metric.
        patience: epochs without progress before stopping; None never stops early.
        loss: the logged validation loss that breaks ties.
    """

    def __init__(
        self,
        path: Path,
        last: Path,
        monitor: str,
        mode: str,
        patience: int | None,
        loss: str = "val/loss",
    ) -> None:
        self.path, self.last = Path(path), Path(last)
        self.monitor, self.mode, self.patience, self.loss = monitor, mode, patience, loss
        self.best_value = math.nan
        self.best_loss = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.undefined_epochs = 0

    @property
    def state_key(self) -> str:
        return f"BestEpoch[{self.monitor}]"

    def _better(self, value: float, loss: float) -> bool:
        if self.best_epoch < 0:
            return True
        if math.isnan(value) or math.isnan(self.best_value) or value == self.best_value:
            return loss < self.best_loss
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise KeyError(
                f"the monitored metric {self.monitor} was not logged; logged: {sorted(metrics)}"
            )
        value = float(metrics[self.monitor])
        loss = float(metrics[self.loss]) if self.loss in metrics else math.nan
        if math.isnan(value):
            self.undefined_epochs += 1
        if self._better(value, loss if math.isfinite(loss) else math.inf):
            self.best_value, self.best_loss = value, loss if math.isfinite(loss) else math.inf
            self.best_epoch, self.wait = trainer.current_epoch, 0
            save_checkpoint(trainer, self.path)
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                trainer.should_stop = True
        # Written after this epoch's decision, so a resumed run continues with the same state.
        save_checkpoint(trainer, self.last)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run killed after the epoch that ran out of patience had saved its checkpoint, but
        # before it stopped. Resumed, Lightning finishes that epoch (without training it again)
        # and calls this hook: the run stops there too instead of training one epoch more.
        if self.patience is not None and self.best_epoch >= 0 and self.wait >= self.patience:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_value": self.best_value,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "undefined_epochs": self.undefined_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
