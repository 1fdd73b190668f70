"""A fusion's auxiliary loss reaches the training objective through the real engine."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

import fusiondx


class LossParts(L.Callback):
    """After each training batch: the objective, the task losses and the fusion's aux losses."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._outputs: dict[str, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def keep(_module: Any, _args: Any, out: dict[str, Any]) -> None:
            self._outputs = out

        pl_module.model.register_forward_hook(keep)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        model = pl_module.model
        with torch.no_grad():
            task = sum(
                model.task_head(t.name).loss(self._outputs[t.name], batch["targets"][t.name])
                for t in pl_module.tasks
            )
        self.rows.append(
            {
                "epoch": trainer.current_epoch,
                "loss": float(loss),
                "task": float(task),
                "aux": {k: float(v.detach()) for k, v in model.fusion.aux_losses.items()},
            }
        )


def test_fit_adds_the_fusion_aux_loss_to_the_task_loss_and_learns_it(
    quick_config: dict[str, Any], one_thread: Any
) -> None:
    # shared_space: its contrastive loss is scale-free, so it must fall as the modalities align
    # (a reconstruction loss follows the embeddings' scale, which grows while the encoders learn).
    quick_config["fusion"] = {"name": "shared_space", "dim": 16}
    quick_config["train"]["epochs"] = 3
    hook = LossParts()
    res = fusiondx.fit(quick_config, callbacks=[hook])
    assert np.isfinite(res.metrics["test"]["diagnosis"]["auroc"])
    assert hook.rows and all(set(r["aux"]) == {"contrastive"} for r in hook.rows)
    for r in hook.rows:
        aux = r["aux"]["contrastive"]
        assert aux > 0 and np.isclose(r["loss"], r["task"] + aux, rtol=1e-5), r
    by_epoch = [
        np.mean([r["aux"]["contrastive"] for r in hook.rows if r["epoch"] == e]) for e in range(3)
    ]
    assert by_epoch[-1] < by_epoch[0], by_epoch
