"""`fusiondx study`: baselines vs fusion strategies vs ablations, in one folder with a report.

``<out>/`` holds::

    runs/<entry>/<seed|fold>/   one ordinary run folder per training (see engine/run.py)
    results.json                everything below, machine-readable, for comparing studies
    table.md, table.csv         the comparison table (metrics with 95% CIs, size, cost)
    report.html                 the self-contained report
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fusiondx.config import Config
from fusiondx.errors import ConfigError, RunError
from fusiondx.models.build import check_parts
from fusiondx.study import analysis, references
from fusiondx.study._console import say_done, train_plan
from fusiondx.study._data_summary import data_summary
from fusiondx.study._results import build_results, json_clean
from fusiondx.study.plan import (
    Entry,
    Replicate,
    ablation_entries,
    main_entries,
    replicates,
    resolve_strategies,
    run_config,
)
from fusiondx.study.report import write_report, write_tables
from fusiondx.study.runner import Job, threads_per_job
from fusiondx.tasks import candidate_types, task_type


@dataclass
class StudyResult:
    out_dir: Path
    results: dict[str, Any]
    failed: dict[str, str]

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"


def run_study(
    cfg: Config,
    out_dir: Path,
    *,
    strategies: str | list[str] | None = None,
    seeds: int | None = None,
    folds: int | None = None,
    jobs: int | None = None,
    extra_entries: list[Entry] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> StudyResult:
    """Train, compare and report; a rerun skips the trainings already finished.

    The study folder is locked while the study runs: a second study on it stops at once.
    """
    from fusiondx.engine import runfolder

    out_dir = out_dir.resolve()
    with runfolder.open_study(out_dir):
        return _run_study(
            cfg,
            out_dir,
            strategies=strategies,
            seeds=seeds,
            folds=folds,
            jobs=jobs,
            extra_entries=extra_entries,
            console=console,
            progress=progress,
        )


def _run_study(
    cfg: Config,
    out_dir: Path,
    *,
    strategies: str | list[str] | None,
    seeds: int | None,
    folds: int | None,
    jobs: int | None,
    extra_entries: list[Entry] | None,
    console: Console | None,
    progress: bool,
) -> StudyResult:
    console = console or Console(stderr=True, quiet=not progress)
    check_parts(cfg)
    names = resolve_strategies(cfg, strategies)
    for s in names:
        check_parts(cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"name": s})}))
    task = cfg.study.task or cfg.tasks[0].name
    if task not in {t.name for t in cfg.tasks}:
        raise ConfigError(
            f"study.task '{task}' is not one of the config's tasks.",
            fix=f"use one of: {', '.join(t.name for t in cfg.tasks)}",
        )
    metric = study_metric(cfg, task)
    reps = replicates(cfg, seeds, folds)
    n_jobs = jobs or cfg.study.jobs
    threads = threads_per_job(n_jobs) if n_jobs > 1 else cfg.train.threads
    pooled = reps[0].fold is not None

    n_single = sum(e.kind == "single" for e in main_entries(cfg, names))
    console.print(
        f"[bold]Study '{cfg.name}'[/]: {n_single} single-modality baselines and "
        f"{len(names)} fusion strategies, {len(reps)} {'folds' if pooled else 'seeds'} each, "
        f"on task '{task}'; winner chosen on validation {metric}."
    )
    data = data_summary(cfg, out_dir, reps, task, progress, console)

    entries = main_entries(cfg, names) + list(extra_entries or [])
    plan = {
        e.id: [Job(e, r, run_config(cfg, e, r, out_dir, threads)) for r in reps] for e in entries
    }
    failed = train_plan(
        plan, n_jobs, "Training baselines and strategies", console, progress, metric
    )
    loaded = load_entries(plan, cfg, task, pooled, failed)
    if not loaded:
        raise RunError(
            "No training of the study finished, so there is nothing to compare.",
            file=out_dir,
            fix="see the error.txt files in the run folders listed above",
        )
    info = analysis.task_info(plan[next(iter(loaded))][0].run_dir, task)
    refs, absent, ref_failed = _references(cfg, out_dir, reps, info, metric, pooled, console)
    loaded |= refs
    failed |= ref_failed
    winner = analysis.choose(loaded, ("fusion", "tuned"), task, metric)
    best_single = analysis.choose(loaded, ("single",), task, metric)
    if winner is None or best_single is None:
        raise RunError(
            "No fusion strategy or no single-modality baseline finished training, so "
            "there is nothing to compare.",
            file=out_dir,
            fix="see the error.txt files in the run folders listed above",
        )

    if cfg.study.ablation:
        abl = ablation_entries(cfg, loaded[winner].entry)
        plan_abl = {
            e.id: [Job(e, r, run_config(cfg, e, r, out_dir, threads)) for r in reps] for e in abl
        }
        failed |= train_plan(
            plan_abl, n_jobs, f"Ablation of {loaded[winner].entry.label}", console, progress, metric
        )
        plan |= plan_abl
        loaded |= load_entries(plan_abl, cfg, task, pooled, failed)

    console.print("Computing confidence intervals and robustness ...")
    results = build_results(
        cfg, out_dir, loaded, info, task, metric, winner, best_single, data, pooled, absent
    )
    (out_dir / "results.json").write_text(json.dumps(json_clean(results), indent=1))
    write_tables(results, out_dir)
    write_report(results, out_dir / "report.html")
    say_done(console, results, out_dir, failed)
    return StudyResult(out_dir, results, failed)


def _references(
    cfg: Config,
    out_dir: Path,
    reps: list[Replicate],
    info: Any,
    metric: str,
    pooled: bool,
    console: Console,
) -> tuple[dict[str, analysis.EntryData], list[dict[str, str]], dict[str, str]]:
    """The scikit-learn references and probes of this study: loaded entries, the ones that
    cannot run (with why), and failures."""
    if not cfg.study.references:
        return {}, [], {}
    if not references.estimates(info):
        why = (
            f"no scikit-learn estimator predicts {info.type} targets"
            + task_type(info).no_reference_note
        )
        return (
            {},
            [
                {
                    "name": "all",
                    "label": "every scikit-learn reference",
                    "kind": "reference",
                    "why": why,
                }
            ],
            {},
        )
    console.print("Reference models and shortcut probes (scikit-learn), on the same splits ...")
    table = references.build_case_table(cfg, out_dir, reps[0])
    planned, absent = references.plan(cfg, table, info)
    jobs, failed = references.run(cfg, planned, table, reps, out_dir, info.name, metric, console)
    by_entry = {p.entry.id: p.entry for p in planned}
    loaded = {eid: analysis.load_entry(by_entry[eid], js, info, pooled) for eid, js in jobs.items()}
    return loaded, absent, failed


def study_metric(cfg: Config, task: str) -> str:
    """The metric that picks the winner: the config's, or the primary metric of the task's head."""
    from fusiondx.evaluation.directions import LOWER_IS_BETTER, WORDS_ONLY
    from fusiondx.registry import HEADS

    tc = next(t for t in cfg.tasks if t.name == task)
    types = candidate_types(tc)
    known = tuple(dict.fromkeys(m for tt in types for m in tt.metrics))
    metric = cfg.study.metric or HEADS.get(tc.head).cls.primary_metric
    ok = [m for m in known if m not in LOWER_IS_BETTER | WORDS_ONLY]
    if metric in WORDS_ONLY:
        raise ConfigError(
            f"study.metric '{metric}' is computed from the written reports of the test "
            "predictions only; validation, where the winner is chosen, has no value for it.",
            fix=f"use one of: {', '.join(ok)}",
        )
    if metric not in known or metric in LOWER_IS_BETTER:
        raise ConfigError(
            f"study.metric '{metric}' is not a metric of task '{task}' ({tc.head}) where "
            "higher is better.",
            fix=f"use one of: {', '.join(ok)}",
        )
    return metric


def load_entries(
    plan: dict[str, list[Job]], cfg: Config, task: str, pooled: bool, failed: dict[str, str]
) -> dict[str, analysis.EntryData]:
    """The entries of ``plan`` whose every replicate finished, loaded for comparison."""
    out = {}
    for eid, jobs in plan.items():
        ok = [
            j
            for j in jobs
            if str(j.run_dir) not in failed and (j.run_dir / "metrics.json").is_file()
        ]
        if len(ok) < len(jobs):
            continue  # an entry is compared only when every replicate finished
        info = analysis.task_info(ok[0].run_dir, task)
        out[eid] = analysis.load_entry(jobs[0].entry, ok, info, pooled)
    return out
