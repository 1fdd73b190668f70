"""fit / evaluate / predict: one run directory per trained model.

``runs/<name>/`` holds::

    config.yaml          the resolved config (absolute paths)
    preprocessing.json   what was fitted on the training split (tokenizer, statistics, classes)
    splits.csv           case_id -> train / val / test
    checkpoints/         best.ckpt and last.ckpt (Lightning; `fit --resume` continues from last)
    model.pt             the best weights as a plain state_dict (loaded with weights_only=True)
    metrics.json         validation and test metrics, epochs, timing
    predictions.csv      per-case probabilities and predictions on val and test
    logs/metrics.csv     training curves

A new ``fit`` refuses a folder that holds an earlier run unless ``overwrite``, which replaces only
these files; one process at a time holds the folder's lock (engine/runfolder.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from fusiondx.config import Config, load_config
from fusiondx.data.dataset import CaseDataset, make_loader, to_device
from fusiondx.data.store import CaseStore, Prepared, label_cases, prepare, prepare_with_state
from fusiondx.engine import runfolder, small_data
from fusiondx.engine.checkpoints import REPAIR, check_weights, load_checkpoint, load_weights
from fusiondx.engine.resume import PlateauCatchUp, RandomStreams
from fusiondx.engine.selection import BestEpoch
from fusiondx.engine.stacking import fit_on_validation
from fusiondx.engine.task import FusionTask
from fusiondx.errors import ConfigError, DataError, RunError
from fusiondx.evaluation.complexity import count_parameters, flops_per_case
from fusiondx.models.build import build_model, check_parts
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo, task_type
from fusiondx.types import ModalitySpec


class _ResumeHint(L.Callback):
    """On Ctrl-C or SIGTERM, say how to continue instead of leaving a bare exit."""

    def __init__(self, last: Path) -> None:
        self.last = last

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            how = "Stopped by SIGTERM" if isinstance(exception, SIGTERMException) else "Interrupted"
            print(f"\n{how} in epoch {trainer.current_epoch}. The last finished epoch is saved in "
                  f"{self.last}; run the same `fusiondx fit` command with --resume to continue.",
                  file=sys.stderr)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


def fit(cfg: Config, *, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        callbacks: list[L.Callback] | None = None, notify: Callable[[str], None] | None = None) -> RunResult:
    """Train a model as configured; write everything to ``cfg.run_dir``; return test metrics.

    A folder holding an earlier run is refused unless ``overwrite`` (which replaces only the
    files a run writes) or ``resume``. ``callbacks`` are extra Lightning callbacks (e.g. a
    hyper-parameter search's pruner). ``notify`` receives each warning about the data (e.g. tiny
    images, blank patient ids) before training starts; they are also kept in metrics.json as
    ``data_notes``.
    """
    with runfolder.open_run(cfg.run_dir, resume=resume, overwrite=overwrite):
        return _fit(cfg, resume=resume, progress=progress, callbacks=callbacks, notify=notify)


def _fit(cfg: Config, *, resume: bool, progress: bool | None, notify: Callable[[str], None] | None,
         callbacks: list[L.Callback] | None) -> RunResult:
    show = cfg.train.progress if progress is None else progress
    run_dir = cfg.run_dir
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise RunError(f"There is no checkpoint to resume from at '{last}'.",
                       fix="run `fusiondx fit` without --resume (with --overwrite if the folder holds files) "
                           "to start the run")
    # Read before any data is: a damaged last.ckpt is one clear error, not Lightning's traceback.
    resumed = load_checkpoint(last, lightning=True) if resume else None
    requested = cfg
    cfg, small = small_data.resolve(cfg, int((label_cases(cfg).split == "train").sum()))
    if small and show:
        print(small_data.describe(small), file=sys.stderr)
    check_parts(cfg)
    _setup_torch(cfg)
    prepared = prepare(cfg, progress=show)
    store = prepared.store
    for note in store.notes if notify is not None else []:
        notify(note)
    if resume:
        _check_same_splits(run_dir, store)
    else:
        runfolder.clear_run(run_dir)
    weights = class_weights(cfg, prepared)
    _write_run_files(cfg, prepared, weights)
    if small:  # config.yaml is what trained; the config as given decides whether a study reruns it
        write_text(run_dir / "requested.yaml", requested.to_yaml())
    model = build_model(cfg, prepared.specs, prepared.tasks, weights)
    task = FusionTask(model, prepared.tasks, cfg.train,
                      {t.name: t.weight for t in cfg.tasks}, seed=cfg.seed)
    task.curves_path = run_dir / "logs" / "metrics.csv"
    monitor, mode = _monitor(cfg)
    es = cfg.train.early_stopping
    best = BestEpoch(run_dir / "checkpoints" / "best.ckpt", last, monitor, mode, es.patience if es else None)
    train_loader, val_loader = _loader(cfg, store, "train", prepared), _loader(cfg, store, "val", prepared)
    streams = RandomStreams({"modality_dropout": task._gen}, train_loader.dataset.augment)
    if resume and cfg.train.num_workers > 0 and train_loader.dataset.augment and show:
        print("note: resuming with train.num_workers > 0 and image augmentation: the loader workers "
              "restart their augmentation streams, so the remaining epochs differ from an "
              "uninterrupted run (num_workers: 0 continues exactly).", file=sys.stderr)
    callbacks = [best, streams, PlateauCatchUp(), _ResumeHint(last), *(callbacks or [])]
    trainer = L.Trainer(
        max_epochs=cfg.train.epochs, accelerator=cfg.train.accelerator, devices=1,
        precision=cfg.train.precision, deterministic=cfg.train.deterministic,
        logger=False, callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=show, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=1, default_root_dir=run_dir)
    if resumed is not None:
        check_weights(task, resumed["state_dict"], last)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*too few batches.*|.*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # A frozen pretrained encoder (minilm) keeps its backbone in eval mode on purpose.
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        try:
            trainer.fit(task, train_loader, val_loader, ckpt_path=str(last) if resume else None, weights_only=True)
        except SIGTERMException:
            # Lightning ends the batch and raises SystemExit() on SIGTERM: exit status 0, as if
            # the run had finished. Stopped is stopped, as with Ctrl-C.
            raise KeyboardInterrupt("SIGTERM") from None
    seconds = time.perf_counter() - start
    best_ckpt = load_checkpoint(best.path if best.path.is_file() else last, lightning=True)
    task.load_state_dict(best_ckpt["state_dict"])
    cross_fitted = fit_on_validation(model, store, store.indices("val"), cfg.train.batch_size)
    torch.save(model.state_dict(), run_dir / "model.pt")
    metrics = {
        "name": cfg.name, "fusion": cfg.fusion.name, "level": model.level,
        "monitor": monitor, "best_epoch": int(best_ckpt.get("epoch", -1)), "epochs_run": trainer.current_epoch,
        "selection": {"monitor": monitor, "mode": mode, "ties": "val/loss",
                      "undefined_epochs": best.undefined_epochs},
        "small_data": small or None,
        "data_notes": store.notes,
        "train_seconds": round(seconds, 2), "n_parameters": count_parameters(model),
        "flops_per_case": _flops(model, store),
        "cases": {s: int((store.split == s).sum()) for s in ("train", "val", "test")},
    }
    frames = []
    for split in ("val", "test"):
        idx = store.indices(split)
        outputs = predict_outputs(model, store, idx, cfg.train.batch_size)
        if split == "val":
            outputs |= cross_fitted
        metrics[split] = {t.name: model.task_head(t.name).evaluate(outputs[t.name],
                                                                  torch.from_numpy(store.targets[t.name][idx]))
                          for t in prepared.tasks}
        frames.append(predictions_frame(model, prepared.tasks, store, idx, outputs))
    pd.concat(frames).to_csv(run_dir / "predictions.csv", index=False)
    # Last, and whole or not at all: a study counts a run with metrics.json as finished.
    write_json(run_dir / "metrics.json", metrics)
    return RunResult(run_dir, metrics)


def evaluate(run_dir: Path, data: Path | None = None, root: Path | None = None, *,
             progress: bool = True) -> RunResult:
    """Metrics of a trained run on its test split, or on every case of another manifest."""
    cfg, model, state = load_run(run_dir)
    manifest = data or cfg.data.manifest
    prepared = prepare_with_state(cfg, state, manifest, _root(cfg, data, root), need_labels=True,
                                  progress=progress)
    store = prepared.store
    if data is None:
        store.split = _saved_splits(run_dir, store)
        idx, where = store.indices("test"), "test"
    else:
        idx, where = np.arange(len(store)), manifest.stem
        store.split = np.full(len(store), "all").astype(str)
    outputs = predict_outputs(model, store, idx, cfg.train.batch_size)
    metrics = {"data": str(manifest), "split": where, "cases": len(idx),
               "metrics": {t.name: model.task_head(t.name).evaluate(outputs[t.name], torch.from_numpy(store.targets[t.name][idx]))
                           for t in prepared.tasks}}
    out = run_dir / "evaluations"
    out.mkdir(exist_ok=True)
    write_json(out / f"{where}.json", metrics)
    predictions_frame(model, prepared.tasks, store, idx, outputs).to_csv(out / f"{where}_predictions.csv", index=False)
    metrics["written"] = str(out / f"{where}.json")
    return RunResult(run_dir, metrics)


def predict(run_dir: Path, data: Path, out: Path, root: Path | None = None, *,
            progress: bool = True, overwrite: bool = False) -> pd.DataFrame:
    """Probabilities and predicted classes for every case of a manifest (labels not needed).

    ``out`` may not be the manifest read, nor a file of the run; an existing file that is not
    a predictions table of this run's tasks is replaced only with ``overwrite``.
    """
    # The manifest is never written over: refused before the run is even loaded.
    runfolder.check_output(out, inputs=[data], run_dir=run_dir, keep="", overwrite=True, ours=True)
    cfg, model, state = load_run(run_dir)
    runfolder.check_output(out, inputs=[data, cfg.data.manifest], run_dir=run_dir, keep="",
                           overwrite=overwrite, ours=_is_predictions(out, [t.name for t in cfg.tasks]))
    prepared = prepare_with_state(cfg, state, data, _root(cfg, data, root), need_labels=False,
                                  progress=progress)
    store = prepared.store
    idx = np.arange(len(store))
    frame = predictions_frame(model, prepared.tasks, store, idx,
                              predict_outputs(model, store, idx, cfg.train.batch_size))
    frame = frame.drop(columns=["split"])
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return frame


def _is_predictions(path: Path, tasks: list[str]) -> bool:
    """Whether ``path`` is a predictions table FusionDx could have written for these tasks."""
    cols = runfolder.csv_columns(path) if path.is_file() else None
    return bool(cols) and cols[0] == "case_id" and len(cols) > 1 and all(
        c == "split" or any(c.startswith(f"{t}_") for t in tasks) for c in cols[1:])


def load_run(run_dir: Path) -> tuple[Config, MultimodalModel, dict[str, Any]]:
    """Rebuild a trained model from its run directory (weights loaded with weights_only=True)."""
    for f in ("config.yaml", "preprocessing.json", "model.pt"):
        if not (run_dir / f).is_file():
            raise RunError(f"The run directory has no {f}.", file=run_dir / f,
                           fix="point at a folder written by `fusiondx fit` that finished training")
    cfg = load_config(run_dir / "config.yaml")
    try:
        state = json.loads((run_dir / "preprocessing.json").read_text())
    except ValueError:  # a cut-off or overwritten file (UnicodeDecodeError is one too)
        raise RunError("The run's preprocessing.json is not valid JSON: it is damaged or truncated.",
                       file=run_dir / "preprocessing.json", fix=REPAIR) from None
    specs = {m: ModalitySpec.from_dict(s) for m, s in state["specs"].items()}
    tasks = [TaskInfo.from_dict(t) for t in state["tasks"]]
    model = build_model(cfg, specs, tasks, state.get("class_weights"))
    load_weights(model, run_dir / "model.pt")
    model.eval()
    return cfg, model, state


@torch.no_grad()
def predict_outputs(model: MultimodalModel, store: CaseStore, idx: np.ndarray,
                    batch_size: int, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The model's predictions for the given cases, in order, in eval mode: logits for
    classification, values, risks, boxes, mask logits or generated token ids for other heads.

    ``mask`` (len(idx), M) replaces the stored presence mask, e.g. to hide modalities.
    """
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[torch.Tensor]] = {}
    step = max(batch_size, 256)
    for start in range(0, len(idx), step):
        batch = store.batch(idx[start:start + step])
        present = batch["mask"] if mask is None else mask[start:start + step]
        for t, v in model.predict(to_device(batch["inputs"], device), present.to(device)).items():
            chunks.setdefault(t, []).append(v.cpu())
    return {t: torch.cat(v) for t, v in chunks.items()}


def predictions_frame(model: MultimodalModel, tasks: list[TaskInfo], store: CaseStore,
                      idx: np.ndarray, predictions: dict[str, Any]) -> pd.DataFrame:
    """The predictions table of these cases: case id, split, and every task's columns (the
    truth where labels are known, the model's answers), as its task type writes them
    (:meth:`fusiondx.tasks.TaskType.prediction_columns`). The study reads them back, so it can
    score and bootstrap any run without its model."""
    cols: dict[str, Any] = {"case_id": store.ids[idx], "split": store.split[idx]}
    for t in tasks:
        tt = task_type(t)
        y = store.targets.get(t.name) if store.targets else None
        y = None if y is None else y[idx]
        cols |= tt.prediction_columns(t, tt.head_output(t, model.task_head(t.name), predictions[t.name]), y)
    return pd.DataFrame(cols)


def _flops(model: MultimodalModel, store: CaseStore) -> int:
    batch = store.batch(store.indices("test")[:8])
    device = next(model.parameters()).device
    return flops_per_case(model, to_device(batch["inputs"], device), batch["mask"].to(device))


def class_weights(cfg: Config, prepared: Prepared) -> dict[str, list[float] | None]:
    """Per task: None, the configured list, or 'balanced' weights from the training split."""
    out: dict[str, list[float] | None] = {}
    train = prepared.store.split == "train"
    for tc, info in zip(cfg.tasks, prepared.tasks, strict=True):
        w = tc.class_weights
        tt = task_type(info)
        if not tt.is_classification:
            if w is not None:
                raise ConfigError(f"tasks[{tc.name}].class_weights is set, but task '{tc.name}' is not a "
                                  "classification task.", fix="remove class_weights from that task")
            out[info.name] = None
            continue
        if w is None or isinstance(w, list):
            out[info.name] = list(w) if w else None
            continue
        out[info.name] = tt.balanced_weights(info, prepared.store.targets[info.name][train])
    return out


def _loader(cfg: Config, store: CaseStore, split: str, prepared: Prepared) -> Any:
    augment = {}
    if split == "train":
        for m in cfg.modalities:
            if m.kind == "image":
                a = m.preprocessing.augment
                if a.flip or a.rotate or a.scale:
                    from fusiondx.data.augment import RandImageAugment  # MONAI import: ~5 s

                    fn = RandImageAugment(flip=a.flip, rotate=a.rotate, scale=a.scale,
                                          spatial_dims=len(m.preprocessing.size))
                    fn.set_random_state(cfg.seed)
                    augment[m.name] = fn
    return make_loader(CaseDataset(store, store.indices(split), augment),
                       batch_size=cfg.train.batch_size, shuffle=split == "train", seed=cfg.seed,
                       num_workers=cfg.train.num_workers)


def _monitor(cfg: Config) -> tuple[str, str]:
    """The logged validation metric that early stopping and the best checkpoint follow."""
    from fusiondx.evaluation.directions import LOWER_IS_BETTER
    from fusiondx.registry import HEADS

    es = cfg.train.early_stopping
    name = es.monitor if es is not None and es.monitor else HEADS.get(cfg.tasks[0].head).cls.primary_metric
    tasks = [t.name for t in cfg.tasks]
    if "/" in name and name.split("/", 1)[0] not in tasks:
        raise ConfigError(f"train.early_stopping.monitor '{name}' names task '{name.split('/', 1)[0]}', "
                          f"which is not in the config.", fix=f"use '<task>/<metric>' with a task of {tasks}")
    metric = name.split("/")[-1]
    mode = (es.mode if es is not None and es.mode else None) or (
        "min" if metric == "loss" or metric in LOWER_IS_BETTER else "max")
    return f"val/{name}", mode


def _setup_torch(cfg: Config) -> None:
    # Lightning's banners (GPU/TPU availability, tips) say nothing about this run.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    threads = cfg.train.threads or min(os.cpu_count() or 1, 8)
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)


def _write_run_files(cfg: Config, prepared: Prepared, weights: dict[str, list[float] | None]) -> None:
    run_dir = cfg.run_dir
    # Rewritten on --resume too; whole or not at all, so a kill here cannot break the next resume.
    write_text(run_dir / "config.yaml", cfg.to_yaml())
    state = prepared.state() | {"class_weights": weights}
    write_json(run_dir / "preprocessing.json", state)
    write_text(run_dir / "splits.csv", pd.DataFrame({"case_id": prepared.store.ids, "split": prepared.store.split})
               .to_csv(index=False))


def _saved_splits(run_dir: Path, store: CaseStore) -> np.ndarray:
    saved = pd.read_csv(run_dir / "splits.csv", dtype=str).set_index("case_id")["split"]
    missing = [i for i in store.ids if i not in saved.index]
    if missing:
        raise DataError(f"{len(missing)} case(s) of the manifest are not in the run's splits.csv.",
                        case_id=missing[0], file=run_dir / "splits.csv",
                        fix="the manifest changed since training; evaluate it with --data instead")
    return saved.loc[list(store.ids)].to_numpy().astype(str)


def _check_same_splits(run_dir: Path, store: CaseStore) -> None:
    if not np.array_equal(_saved_splits(run_dir, store), store.split):
        raise RunError("The data or split settings changed since this run started, so it cannot be resumed.",
                       file=run_dir / "splits.csv", fix="run `fusiondx fit --overwrite` (without --resume) to start over")


def _root(cfg: Config, data: Path | None, root: Path | None) -> Path:
    if root is not None:
        return root
    return data.parent if data is not None else cfg.data.data_root


def write_json(path: Path, obj: Any) -> None:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    write_text(path, json.dumps(clean(obj), indent=2))


def write_text(path: Path, text: str) -> None:
    """Write a file whole or not at all: a killed process never leaves a half-written one."""
    runfolder.write_whole(path, lambda tmp: tmp.write_text(text))
