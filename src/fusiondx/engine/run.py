"""fit / evaluate / predict: one run folder per trained model.

What a run folder holds, and how it is read back, is :mod:`fusiondx.engine.rundir`. A new
``fit`` refuses a folder that holds an earlier run unless ``overwrite``, which replaces only
those files; one process at a time holds the folder's lock (:mod:`fusiondx.engine.runfolder`).

A training is Lightning's: :class:`~fusiondx.engine.task.FusionTask` (losses, optimiser,
validation metrics) over a :class:`~fusiondx.engine.datamodule.CaseDataModule`, with callbacks
for the kept epoch (:class:`~fusiondx.engine.selection.BestEpoch`), an exact resume
(:mod:`fusiondx.engine.resume`), the training curves and the hint printed when stopped. Extra
callbacks are passed to :func:`fit` (``callbacks=[...]``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.data.dataset import to_device
from fusiondx.data.groups import GROUP_PREFIX
from fusiondx.data.labelling import label_cases
from fusiondx.data.store import CaseStore, Prepared, prepare, prepare_with_state
from fusiondx.engine import fhir_out, posthoc, runfolder, small_data
from fusiondx.engine.checkpoints import check_weights, load_checkpoint
from fusiondx.engine.class_weights import class_weights
from fusiondx.engine.curves import TrainingCurves
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.distill_task import DistillTask, SoftTargets, resume_soft_targets
from fusiondx.engine.distributed import check_launch, launched_rank
from fusiondx.engine.fairness import frame_fairness
from fusiondx.engine.inference import evaluate_outputs, loader_outputs, predictions_frame
from fusiondx.engine.init_encoders import (
    apply_pretrained,
    check_unseen,
    load_pretrained,
    preprocessor_states,
)
from fusiondx.engine.resume import PlateauCatchUp, RandomStreams
from fusiondx.engine.resume_hint import ResumeHint
from fusiondx.engine.rundir import RunDir, check_same_splits, write_json, write_text
from fusiondx.engine.selection import BestEpoch, monitor
from fusiondx.engine.stacking import fit_on_validation
from fusiondx.engine.task import FusionTask
from fusiondx.engine.trainer import build_trainer, setup_torch, threads_for_model, train
from fusiondx.errors import RunError
from fusiondx.evaluation.complexity import count_parameters, flops_per_case
from fusiondx.models.build import build_model, check_parts
from fusiondx.models.multimodal import MultimodalModel


@dataclass
class RunResult:
    """What ``fit`` or ``evaluate`` concluded: the run folder and its metrics."""

    run_dir: Path
    metrics: dict[str, Any]


def fit(
    cfg: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[L.Callback] | None = None,
    notify: Callable[[str], None] | None = None,
    soft_targets: SoftTargets | None = None,
    launch: bool = False,
) -> RunResult:
    """Train a model as configured; write everything to ``cfg.run_dir``; return test metrics.

    ``train.devices`` / ``train.num_nodes`` above 1 train on several processes
    (:mod:`fusiondx.engine.distributed`): started by torchrun or SLURM, or, with ``launch``, by
    Lightning re-running this process's command (what ``fusiondx fit`` does). Rank 0 writes the
    run folder and returns its metrics; every other process returns ``{"rank": <rank>}``.

    A folder holding an earlier run is refused unless ``overwrite`` (which replaces only the
    files a run writes) or ``resume``. ``callbacks`` are extra Lightning callbacks, called after
    FusionDx's own (e.g. a hyper-parameter search's pruner, or any ``L.Callback`` hook). ``notify``
    receives each warning about the data (e.g. tiny images, blank patient ids) before training
    starts; they are also kept in metrics.json as ``data_notes``. ``soft_targets`` (a teacher's
    logits per case) makes the training a distillation (:mod:`fusiondx.engine.distill_task`);
    ``resume`` of a distilled run scores its recorded teacher again and continues with it.
    """
    check_launch(cfg, launch=launch)
    rank = launched_rank()
    # One writer: the other processes neither lock nor clear the folder rank 0 holds.
    held = (
        runfolder.open_run(cfg.run_dir, resume=resume, overwrite=overwrite)
        if rank == 0
        else contextlib.nullcontext()
    )
    with held:
        return _fit(
            cfg,
            resume=resume,
            progress=progress,
            callbacks=callbacks,
            notify=notify,
            soft_targets=soft_targets,
            rank=rank,
        )


def _fit(
    cfg: Config,
    *,
    resume: bool,
    progress: bool | None,
    notify: Callable[[str], None] | None,
    callbacks: Sequence[L.Callback] | None,
    soft_targets: SoftTargets | None = None,
    rank: int = 0,
) -> RunResult:
    writer = rank == 0
    show = (cfg.train.progress if progress is None else progress) and writer
    run = RunDir(cfg.run_dir)
    last = run.last_checkpoint
    if resume and not last.is_file():
        raise RunError(
            f"There is no checkpoint to resume from at '{last}'.",
            fix="run `fusiondx fit` without --resume (with --overwrite if the folder holds files) "
            "to start the run",
        )
    # Read before any data is: a damaged last.ckpt is one clear error, not Lightning's traceback.
    resumed = load_checkpoint(last, lightning=True) if resume else None
    if resume:  # a distilled run continues with its teacher, or says why it cannot
        soft_targets = resume_soft_targets(run, soft_targets, show)
    requested = cfg
    cfg, small = small_data.resolve(cfg, int((label_cases(cfg).split == "train").sum()))
    if small and show:
        print(small_data.describe(small), file=sys.stderr)
    check_parts(cfg)
    pretrained = load_pretrained(cfg)
    setup_torch(cfg)
    prepared = prepare(cfg, progress=show, fitted=preprocessor_states(pretrained))
    store = prepared.store
    check_unseen(pretrained, store)
    if notify is not None and writer:
        for note in store.notes:
            notify(note)
    if resume:
        check_same_splits(run.path, store)
    elif writer:
        runfolder.clear_run(run.path)
    weights = class_weights(cfg, prepared)
    if writer:
        run.write_inputs(cfg, prepared, weights)
        if soft_targets is not None and not resume:
            write_json(run.distillation_file, soft_targets.describe())
    if small and writer:
        # config.yaml is what trained; the config as given decides whether a study reruns it
        write_text(run.requested_file, requested.to_yaml())
    model = build_model(cfg, prepared.specs, prepared.tasks, weights)
    frozen = apply_pretrained(cfg, model.encoders, prepared.specs, pretrained)
    threads = threads_for_model(cfg, _flops(model, store, split="train"))
    task_weights = {t.name: t.weight for t in cfg.tasks}
    if soft_targets is None:
        task = FusionTask(model, prepared.tasks, cfg.train, task_weights, seed=cfg.seed)
    else:
        task = DistillTask(
            model,
            prepared.tasks,
            cfg.train,
            task_weights,
            soft_targets.aligned(store.ids),
            soft_targets.alpha,
            soft_targets.temperature,
            seed=cfg.seed,
        )
    watched, mode = monitor(cfg)
    es = cfg.train.early_stopping
    best = BestEpoch(run.best_checkpoint, last, watched, mode, es.patience if es else None)
    data = CaseDataModule.from_config(cfg, store)
    if resume and cfg.train.num_workers > 0 and data.augment and show:
        print(
            "note: resuming with train.num_workers > 0 and image augmentation: the loader workers "
            "restart their augmentation streams, so the remaining epochs differ from an "
            "uninterrupted run (num_workers: 0 continues exactly).",
            file=sys.stderr,
        )
    # The curves before BestEpoch: an epoch's row is written before its checkpoint is.
    own = [
        TrainingCurves(run.curves_file),
        best,
        RandomStreams({"modality_dropout": task.modality_dropout_generator}, data.augment),
        PlateauCatchUp(),
        ResumeHint(last, distilled=soft_targets is not None),
    ]
    trainer = build_trainer(cfg, [*own, *(callbacks or [])], progress=show, root=run.path)
    if resumed is not None:
        check_weights(task, resumed["state_dict"], last)
    seconds = train(trainer, task, data, resume_from=last if resume else None)
    if not writer:
        return RunResult(run.path, {"rank": rank})
    best_ckpt = load_checkpoint(best.path if best.path.is_file() else last, lightning=True)
    task.load_state_dict(best_ckpt["state_dict"])
    metrics = {
        "name": cfg.name,
        "fusion": cfg.fusion.name,
        "level": model.level,
        "monitor": watched,
        "best_epoch": int(best_ckpt.get("epoch", -1)),
        "epochs_run": trainer.current_epoch,
        "selection": {
            "monitor": watched,
            "mode": mode,
            "ties": "val/loss",
            "undefined_epochs": best.undefined_epochs,
        },
        "small_data": small or None,
        "pretrained": {m: str(path) for m, (path, _) in pretrained.items()} or None,
        "frozen_encoders": frozen or None,
        "threads": threads,
        "data_notes": store.notes,
    }
    if soft_targets is not None:
        metrics["distillation"] = soft_targets.describe()
    return RunResult(run.path, _conclude(run, cfg, prepared, model, data, metrics, seconds))


def _conclude(
    run: RunDir,
    cfg: Config,
    prepared: Prepared,
    model: MultimodalModel,
    data: CaseDataModule,
    metrics: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """With the kept weights loaded: fit meta-learners, score val and test, write the results."""
    store = prepared.store
    cross_fitted = fit_on_validation(model, store, store.indices("val"), cfg.train.batch_size)
    torch.save(model.state_dict(), run.weights_file)
    metrics |= {
        "train_seconds": round(seconds, 2),
        "n_parameters": count_parameters(model),
        "flops_per_case": _flops(model, store),
        "cases": {s: int((store.split == s).sum()) for s in ("train", "val", "test")},
    }
    tasks = prepared.tasks
    raw = {}
    for split in ("val", "test"):
        raw[split] = loader_outputs(model, data.inference_loader(store.indices(split)))
    raw["val"] |= cross_fitted
    # Calibration, thresholds and conformal sets: fitted on validation, applied to both splits.
    val = store.indices("val")
    state = posthoc.fit_posthoc(
        cfg.posthoc,
        tasks,
        {t.name: model.task_head(t.name) for t in tasks},
        raw["val"],
        {t: v[val] for t, v in (store.targets or {}).items()},
    )
    post = posthoc.Posthoc(state)
    if post:
        write_json(run.posthoc_file, state)
    frames = []
    for split in ("val", "test"):
        idx = store.indices(split)
        frame, metrics[split] = _scored(model, tasks, store, idx, raw[split], post)
        frames.append(frame)
    pd.concat(frames).to_csv(run.predictions_file, index=False)
    # Last, and whole or not at all: a study counts a run with metrics.json as finished.
    write_json(run.metrics_file, metrics)
    return metrics


def _scored(
    model: MultimodalModel,
    tasks: list[Any],
    store: CaseStore,
    idx: np.ndarray,
    raw: dict[str, torch.Tensor],
    post: posthoc.Posthoc,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The predictions table and metrics of cases with known labels, post-hoc layer applied."""
    outputs = posthoc.apply(post, model, tasks, raw)
    metrics = evaluate_outputs(model, tasks, store, idx, outputs)
    targets = {t: v[idx] for t, v in (store.targets or {}).items()}
    metrics = posthoc.with_metrics(post, model, tasks, metrics, raw, outputs, targets)
    frame = predictions_frame(model, tasks, store, idx, outputs)
    return posthoc.with_columns(post, model, tasks, frame, raw), metrics


def evaluate(
    run_dir: Path, data: Path | None = None, root: Path | None = None, *, progress: bool = True
) -> RunResult:
    """Metrics of a trained run on its test split, or on every case of another manifest.

    With ``fairness.columns`` in the run's config, ``metrics["fairness"]`` holds each task's
    subgroup table (:func:`fusiondx.engine.fairness.frame_fairness`)."""
    run = RunDir(run_dir)
    cfg, model, state = run.load()
    manifest = data or cfg.data.manifest
    prepared = prepare_with_state(
        cfg, state, manifest, _root(cfg, data, root), need_labels=True, progress=progress
    )
    store = prepared.store
    cases = CaseDataModule.from_config(cfg, store, train=False)
    if data is None:
        store.split = run.splits(store.ids)
        idx, where, loader = store.indices("test"), "test", cases.test_dataloader()
    else:
        idx, where, loader = np.arange(len(store)), manifest.stem, cases.predict_dataloader()
        store.split = np.full(len(store), "all").astype(str)
    post = posthoc.Posthoc(run.posthoc())
    frame, scored = _scored(model, prepared.tasks, store, idx, loader_outputs(model, loader), post)
    metrics = {"data": str(manifest), "split": where, "cases": len(idx), "metrics": scored}
    if cfg.fairness.columns:
        metrics["fairness"] = {
            t.name: frame_fairness([frame], t, cfg.fairness, seed=cfg.seed) for t in prepared.tasks
        }
    out = run.evaluations
    out.mkdir(exist_ok=True)
    write_json(out / f"{where}.json", metrics)
    frame.to_csv(out / f"{where}_predictions.csv", index=False)
    metrics["written"] = str(out / f"{where}.json")
    return RunResult(run.path, metrics)


def predict(
    run_dir: Path,
    data: Path,
    out: Path,
    root: Path | None = None,
    *,
    progress: bool = True,
    overwrite: bool = False,
    format: str = "csv",
) -> pd.DataFrame:
    """Probabilities and predicted classes for every case of a manifest (labels not needed).

    ``out`` may not be the manifest read, nor a file of the run; an existing file that is not
    a predictions table of this run's tasks is replaced only with ``overwrite``. ``format``:
    ``csv`` (the predictions table) or ``fhir`` (RiskAssessment resources as a Bundle, or
    NDJSON when ``out`` ends in ``.ndjson``; see :mod:`fusiondx.engine.fhir_out`).
    """
    if format not in ("csv", "fhir"):
        raise RunError(
            f"Unknown output format '{format}'.", fix="use --format csv or --format fhir"
        )
    # The manifest is never written over: refused before the run is even loaded.
    runfolder.check_output(out, inputs=[data], run_dir=run_dir, keep="", overwrite=True, ours=True)
    run = RunDir(run_dir)
    cfg, model, state = run.load()
    post = posthoc.Posthoc(run.posthoc())
    runfolder.check_output(
        out,
        inputs=[data, cfg.data.manifest],
        run_dir=run_dir,
        keep="",
        overwrite=overwrite,
        ours=_is_predictions(out, [t.name for t in cfg.tasks])
        if format == "csv"
        else fhir_out.is_fhir_output(out),
    )
    prepared = prepare_with_state(
        cfg, state, data, _root(cfg, data, root), need_labels=False, progress=progress
    )
    store = prepared.store
    raw = loader_outputs(
        model, CaseDataModule.from_config(cfg, store, train=False).predict_dataloader()
    )
    outputs = posthoc.apply(post, model, prepared.tasks, raw)
    frame = predictions_frame(model, prepared.tasks, store, np.arange(len(store)), outputs)
    frame = posthoc.with_columns(post, model, prepared.tasks, frame, raw)
    frame = frame.drop(columns=["split"])
    if format == "fhir":
        fhir_out.write_predictions(run, cfg, data, prepared.tasks, store, frame, out)
        return frame
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return frame


def _is_predictions(path: Path, tasks: list[str]) -> bool:
    """Whether ``path`` is a predictions table FusionDx could have written for these tasks."""
    cols = runfolder.csv_columns(path) if path.is_file() else None
    if not cols:
        return False
    return (
        cols[0] == "case_id"
        and len(cols) > 1
        and all(
            c == "split" or c.startswith(GROUP_PREFIX) or any(c.startswith(f"{t}_") for t in tasks)
            for c in cols[1:]
        )
    )


def _flops(model: MultimodalModel, store: CaseStore, split: str = "test") -> int:
    """FLOPs of one case of ``split`` with every modality present: the cost of a full case,
    comparable between models whatever the cohort's missing modalities."""
    cases = store.indices(split)
    whole = cases[store.mask[cases].all(axis=1)]
    batch = store.batch((whole if len(whole) else cases)[:1])
    mask = torch.ones_like(batch["mask"])
    device = next(model.parameters()).device
    return flops_per_case(model, to_device(batch["inputs"], device), mask.to(device))


def _root(cfg: Config, data: Path | None, root: Path | None) -> Path:
    if root is not None:
        return root
    return data.parent if data is not None else cfg.data.data_root
