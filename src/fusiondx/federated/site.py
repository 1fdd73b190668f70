"""One site's side of federated training: its own cases, FusionDx's model, Lightning's Trainer.

:class:`SiteModel` holds what a hospital holds: its manifest's rows decoded with the agreed
(merged) preprocessing, the model ``fit`` would build from them, and a
:class:`~fusiondx.engine.task.FusionTask` that Lightning trains for the local epochs of each
round. Only the model's weights (and the aggregate statistics of
:mod:`fusiondx.data.preprocessors`' ``partial``) leave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.data.labelling import label_cases
from fusiondx.data.manifest import modality_present
from fusiondx.data.preprocessors import make_preprocessor
from fusiondx.data.store import Prepared, prepare
from fusiondx.engine.class_weights import class_weights
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.inference import evaluate_outputs, loader_outputs, predictions_frame
from fusiondx.engine.task import FusionTask
from fusiondx.engine.trainer import build_trainer, setup_torch, train
from fusiondx.models.build import build_model


def site_statistics(cfg: Config) -> dict[str, Any]:
    """Each modality's ``partial`` statistics over this site's training cases, and its tasks
    (class lists) so that the sites can check they agree."""
    lab = label_cases(cfg)
    train = lab.split == "train"
    out: dict[str, Any] = {"modalities": {}, "tasks": [t.to_dict() for t in lab.tasks]}
    for m in cfg.modalities:
        p = make_preprocessor(m, cfg.data.data_root)
        out["modalities"][m.name] = p.partial(lab.df, modality_present(lab.df, m) & train, lab.ids)
    return out


def merge_statistics(cfg: Config, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The agreed preprocessing state of every modality, from the sites' ``partial`` parts."""
    from fusiondx.errors import ConfigError

    tasks = parts[0]["tasks"]
    for part in parts[1:]:
        if part["tasks"] != tasks:
            raise ConfigError(
                "The sites' tasks differ (their class lists or label coding), so one model "
                "cannot serve them all.",
                fix="list every class under `classes:` of each task in the config",
            )
    states = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, cfg.data.data_root)
        p.merge([part["modalities"][m.name] for part in parts])
        states[m.name] = p.state()
    return states


class ProximalTerm(L.Callback):
    """FedProx: the gradient of ``mu / 2 * ||w - w_global||^2`` added after each backward pass
    (the same as adding the term to the loss, without touching the task's loss)."""

    def __init__(self, mu: float, anchor: list[torch.Tensor]) -> None:
        self.mu, self.anchor = mu, anchor

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for p, a in zip(pl_module.parameters(), self.anchor, strict=True):
            if p.grad is not None:
                p.grad.add_(p.detach() - a, alpha=self.mu)


class SiteModel:
    """A site's decoded cases and the model trained on them, round after round."""

    def __init__(self, name: str, cfg: Config, states: dict[str, Any], work: Path) -> None:
        self.name, self.cfg, self.work = name, cfg, work
        setup_torch(cfg)
        self.prepared: Prepared = prepare(cfg, progress=False, fitted=states)
        weights = class_weights(cfg, self.prepared)
        # Every site builds the same model from the same seed and the same agreed specs.
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, self.prepared.specs, self.prepared.tasks, weights)
        self.task = FusionTask(
            model,
            self.prepared.tasks,
            cfg.train,
            {t.name: t.weight for t in cfg.tasks},
            seed=cfg.seed,
        )
        self.data = CaseDataModule.from_config(cfg, self.prepared.store)
        self.rounds = 0

    @property
    def n_train(self) -> int:
        return int(len(self.prepared.store.indices("train")))

    def get_weights(self) -> list[np.ndarray]:
        return [v.detach().cpu().numpy().copy() for v in self.task.state_dict().values()]

    def set_weights(self, arrays: list[np.ndarray]) -> None:
        keys = list(self.task.state_dict())
        state = {k: torch.from_numpy(np.asarray(a)) for k, a in zip(keys, arrays, strict=True)}
        self.task.load_state_dict(state, strict=True)

    def train(self, epochs: int, mu: float = 0.0) -> None:
        """``epochs`` local epochs by Lightning's Trainer (FedProx's term when ``mu > 0``)."""
        self.rounds += 1
        L.seed_everything(self.cfg.seed + 1000 * self.rounds, workers=True, verbose=False)
        cfg = self.cfg.model_copy(
            update={"train": self.cfg.train.model_copy(update={"epochs": epochs})}
        )
        callbacks: list[L.Callback] = []
        if mu > 0:
            anchor = [p.detach().clone() for p in self.task.parameters()]
            callbacks.append(ProximalTerm(mu, anchor))
        trainer = build_trainer(cfg, callbacks, progress=False, root=self.work)
        train(trainer, self.task, self.data)

    def outputs(self, split: str) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        store = self.prepared.store
        idx = store.indices(split)
        return idx, loader_outputs(self.task.model, self.data.inference_loader(idx))

    def metrics(self, split: str) -> dict[str, dict[str, Any]]:
        """Each task's head metrics on this site's ``split`` cases."""
        idx, out = self.outputs(split)
        return evaluate_outputs(self.task.model, self.prepared.tasks, self.prepared.store, idx, out)

    def predictions(self, split: str = "test") -> pd.DataFrame:
        idx, out = self.outputs(split)
        store = self.prepared.store
        return predictions_frame(self.task.model, self.prepared.tasks, store, idx, out)
