"""Settings for small cohorts: what a run changes when it has few training cases.

The defaults (32 cases a batch, 20 epochs, a text transformer learned from scratch, 128-wide
embeddings, weight decay 1e-4) suit a cohort of thousands. With 150 training cases they give
five optimiser steps an epoch, a hundred in all, and a text encoder that must learn a language
from a few hundred sentences: hopeless, and beaten by a bag of words. Below ``SMALL_TRAIN``
training cases (``train.small_data: auto``, the default) or always (``on``), a run changes the
settings the config leaves at their defaults, and only those:

- batch size 16 and up to 60 epochs, with early stopping patience 10: enough optimiser steps;
- weight decay 1e-2 and 32-wide embeddings: less capacity to memorise;
- text modalities with the default encoder read through the frozen pretrained MiniLM sentence
  encoder (``fusiondx[minilm]``, offline) instead of a transformer learned from scratch.

Whatever it changed is printed, written to ``metrics.json`` (``small_data``) and saved as the
run's ``config.yaml``; the config as given is kept in ``requested.yaml``. ``off`` keeps the
configured settings. The measured effect is in docs/study.md ("Small data on purpose").
"""

from __future__ import annotations

from typing import Any

from fusiondx.config import Config

SMALL_TRAIN = 400  # training cases below which 'auto' applies the small-data settings
SMALL = {"batch_size": 16, "epochs": 60, "patience": 10, "weight_decay": 1e-2, "dim": 32}


def resolve(cfg: Config, n_train: int) -> tuple[Config, dict[str, Any]]:
    """The config a run trains with, and what was changed (empty when nothing was)."""
    mode = cfg.train.small_data
    if mode == "off" or (mode == "auto" and n_train >= SMALL_TRAIN):
        return cfg, {}
    changed: dict[str, Any] = {}
    t = cfg.train
    train: dict[str, Any] = {}
    if "batch_size" not in t.model_fields_set and t.batch_size > SMALL["batch_size"]:
        train["batch_size"] = SMALL["batch_size"]
    if "epochs" not in t.model_fields_set and t.epochs < SMALL["epochs"]:
        train["epochs"] = SMALL["epochs"]
    if "weight_decay" not in t.model_fields_set and t.weight_decay < SMALL["weight_decay"]:
        train["weight_decay"] = SMALL["weight_decay"]
    if "early_stopping" not in t.model_fields_set and t.early_stopping is not None:
        train["early_stopping"] = t.early_stopping.model_copy(
            update={"patience": SMALL["patience"]}
        )
    changed |= {
        f"train.{k}": (v.patience if k == "early_stopping" else v) for k, v in train.items()
    }
    if "early_stopping" in train:
        changed["train.early_stopping.patience"] = changed.pop("train.early_stopping")
    update: dict[str, Any] = {}
    if train:
        update["train"] = t.model_copy(update=train)
    if "dim" not in cfg.fusion.model_fields_set and cfg.fusion.dim > SMALL["dim"]:
        update["fusion"] = cfg.fusion.model_copy(update={"dim": SMALL["dim"]})
        changed["fusion.dim"] = SMALL["dim"]
    mods = []
    for m in cfg.modalities:
        if (
            m.kind == "text"
            and m.encoder.name is None
            and "tokenizer" not in m.preprocessing.model_fields_set
            and minilm_available()
        ):
            m = m.model_copy(
                update={
                    "encoder": m.encoder.model_copy(update={"name": "minilm"}),
                    "preprocessing": m.preprocessing.model_copy(update={"tokenizer": "minilm"}),
                }
            )
            changed[f"modalities[{m.name}].encoder"] = "minilm (frozen, pretrained)"
        mods.append(m)
    if any(k.startswith("modalities") for k in changed):
        update["modalities"] = mods
    if not changed:
        return cfg, {}
    return cfg.model_copy(update=update), {"train_cases": n_train, "changed": changed}


def describe(small: dict[str, Any]) -> str:
    """One line for the run log."""
    what = ", ".join(f"{k} {v}" for k, v in small["changed"].items())
    return (
        f"Small data ({small['train_cases']} training cases, fewer than {SMALL_TRAIN}): {what}. "
        "Set train.small_data: off to keep the configured defaults."
    )


def minilm_available() -> bool:
    try:
        import transformers  # noqa: F401

        from fusiondx.pretrained import minilm_model_dir

        minilm_model_dir()
    except Exception:  # noqa: BLE001  (not installed: the text transformer stays)
        return False
    return True
