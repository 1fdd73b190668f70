"""`fusiondx search`: Optuna over fusion strategy and key hyper-parameters, then a refit study.

Trials are scored on validation data only. ``--workers N`` runs N processes on this machine
that share the trials through the storage; a database URL (``--storage``) lets several
machines run trials of one search at once (:mod:`fusiondx.study.search_workers`). The default
is a SQLite file in the search folder (a journal file with several workers).
The best trial is refit over the study's seeds next to the untuned strategy and the
single-modality baselines, and reported like any study.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
from rich.console import Console

from fusiondx.config import Config, load_config
from fusiondx.errors import ConfigError
from fusiondx.study.plan import Entry, Replicate, resolve_strategies, run_config
from fusiondx.study.search_workers import Worker
from fusiondx.study.study import StudyResult, run_study, study_metric

# The space searched; ranges follow what moves validation AUROC on the built-in cohort and
# what published fusion papers tune (embedding width, dropout, lr, modality dropout).
DIMS = (32, 64, 128)


class _Pruner(L.Callback):
    """Reports the validation metric after each epoch and stops trials Optuna deems hopeless."""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


def suggest(trial: Any, strategies: list[str]) -> Entry:
    """One point of the search space, as a study entry over all modalities."""
    fusion = trial.suggest_categorical("fusion", strategies)
    options = {
        "dim": trial.suggest_categorical("dim", list(DIMS)),
        "encoder_dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "train": {
            "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
            "modality_dropout": trial.suggest_float("modality_dropout", 0.0, 0.5),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        },
    }
    return Entry(f"trial_{trial.number:04d}", f"trial {trial.number}", "tuned", fusion, (), options)


def _open_study(cfg: Config, storage: str, seed: int) -> Any:
    """The search's Optuna study in ``storage`` (created on first use); ``seed`` seeds this
    process's sampler."""
    import optuna

    from fusiondx.study.search_workers import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(
            study_name=cfg.name,
            storage=open_storage(storage),
            direction="maximize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
        )
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001  (a bad URL or an unreachable database)
        raise ConfigError(
            f"Cannot open the search storage '{storage}' ({exc}).",
            fix="give a database URL such as sqlite:///search.db or postgresql://user@host/db, "
            "or a journal file (journal:///path/search.journal)",
        ) from None


def _work(job: Worker, console: Console | None = None) -> None:
    """One worker: ``job.trials`` trials of the search, each trained and told to the storage."""
    import optuna

    cfg = job.cfg
    if job.threads != cfg.train.threads:
        cfg = cfg.model_copy(
            update={"train": cfg.train.model_copy(update={"threads": job.threads})}
        )
    console = console or Console(stderr=True, quiet=job.quiet)
    task = cfg.study.task or cfg.tasks[0].name
    metric = study_metric(cfg, task)
    mods = tuple(sorted(m.name for m in cfg.modalities))
    # Worker 0 keeps the config's seed: one worker searches as a search always has.
    study = _open_study(cfg, job.storage, cfg.seed + job.index)
    tag = f" (worker {job.index})" if job.index else ""

    def objective(trial: optuna.Trial) -> float:
        from fusiondx.engine.run import fit

        trial.set_user_attr("worker", job.index)
        entry = suggest(trial, job.names)
        entry = Entry(entry.id, entry.label, entry.kind, entry.fusion, mods, entry.options)
        config = run_config(cfg, entry, Replicate("seed0", cfg.seed), job.out_dir / "trials", None)
        # Trial folders belong to the search: a trial number met again (a new storage) starts over.
        res = fit(
            load_config(config),
            overwrite=True,
            progress=False,
            callbacks=[_Pruner(trial, f"val/{task}/{metric}")],
        )
        value = res.metrics["val"][task][metric]
        trial.set_user_attr("run_dir", str(res.run_dir))
        return float(value)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        best = study.best_trial if any(t.value is not None for t in study.trials) else None
        state = trial.state.name.lower()
        value = f"val {metric} {trial.value:.4f}" if trial.value is not None else state
        console.print(
            f"trial {trial.number}{tag}: {trial.params.get('fusion')} -> {value}"
            + (f"; best so far: trial {best.number} ({best.value:.4f})" if best else "")
        )

    study.optimize(objective, n_trials=job.trials, callbacks=[report], catch=(RuntimeError,))


def run_search(
    cfg: Config,
    out_dir: Path,
    *,
    trials: int,
    storage: str | None = None,
    workers: int = 1,
    first_worker: int = 0,
    strategies: str | list[str] | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    refit: bool = True,
    console: Console | None = None,
    progress: bool = True,
) -> tuple[Any, StudyResult | None]:
    """Run ``trials`` more trials of the search named after the config; refit the best one.

    ``workers`` processes on this machine share the trials (exactly ``trials`` in all) through
    ``storage``; without one, several workers use a journal file in ``out_dir``
    (:mod:`fusiondx.study.search_workers`). ``first_worker`` numbers this machine's workers
    from there, so that workers on other machines sharing the storage draw other samples.
    """
    from fusiondx.study.search_workers import (
        default_storage,
        run_workers,
        split_trials,
        worker_threads,
    )

    if workers < 1 or trials < 0:
        raise ConfigError(
            f"--workers {workers} / --trials {trials}: at least one worker and no negative trials.",
            fix="give --workers 1 or more and --trials 0 or more",
        )
    console = console or Console(stderr=True, quiet=not progress)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = resolve_strategies(cfg, strategies)
    storage = storage or default_storage(out_dir, workers)
    task = cfg.study.task or cfg.tasks[0].name
    metric = study_metric(cfg, task)
    mods = tuple(sorted(m.name for m in cfg.modalities))
    study = _open_study(cfg, storage, cfg.seed + first_worker)  # a bad storage fails here, once
    shares = [n for n in split_trials(trials, workers) if n]
    console.print(
        f"[bold]Search '{cfg.name}'[/]: {trials} trial(s) over {len(names)} strategies"
        + (f" on {len(shares)} worker processes" if len(shares) > 1 else "")
        + f"; storage {storage}"
    )
    threads = worker_threads(cfg, len(shares))
    run_workers(
        [
            Worker(cfg, out_dir, storage, names, n, first_worker + i, threads, not progress)
            for i, n in enumerate(shares)
        ],
        _work,
        lambda job: _work(job, console),
    )
    study = _open_study(cfg, storage, cfg.seed + first_worker)  # every worker's trials
    done = [t for t in study.trials if t.value is not None]
    if not done:
        console.print("[yellow]No trial finished; nothing to refit.[/]")
        return study, None
    best = study.best_trial
    console.print(f"Best trial {best.number}: val {metric} {best.value:.4f} with {best.params}")
    if not refit:
        return study, None
    p = best.params
    tuned = Entry(
        f"tuned_{p['fusion']}",
        f"{p['fusion']} (tuned)",
        "tuned",
        p["fusion"],
        mods,
        {
            "dim": p["dim"],
            "encoder_dropout": p["dropout"],
            "train": {
                "lr": p["lr"],
                "modality_dropout": p["modality_dropout"],
                "weight_decay": p["weight_decay"],
            },
        },
    )
    console.print(
        "Refitting the best trial over the study's seeds, beside the untuned strategy and "
        "the single-modality baselines ..."
    )
    result = run_study(
        cfg,
        out_dir / "best",
        strategies=[p["fusion"]],
        seeds=seeds,
        jobs=jobs,
        extra_entries=[tuned],
        console=console,
        progress=progress,
    )
    return study, result
