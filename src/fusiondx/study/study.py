"""`fusiondx study`: baselines vs fusion strategies vs ablations, in one folder with a report.

``<out>/`` holds::

    runs/<entry>/<seed|fold>/   one ordinary run folder per training (see engine/run.py)
    results.json                everything below, machine-readable, for comparing studies
    table.md, table.csv         the comparison table (metrics with 95% CIs, size, cost)
    report.html                 the self-contained report
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fusiondx.config import Config, load_config
from fusiondx.errors import ConfigError, RunError
from fusiondx.models.build import check_parts
from fusiondx.study import analysis, references
from fusiondx.study.plan import (
    BASELINE_FUSION,
    Entry,
    Replicate,
    ablation_entries,
    anchors,
    main_entries,
    replicates,
    resolve_strategies,
    run_config,
)
from fusiondx.study.report import write_report, write_tables
from fusiondx.study.robustness import robustness
from fusiondx.study.runner import Job, read_metrics, run_jobs, threads_per_job
from fusiondx.study.samples import samples
from fusiondx.study.verdict import WARNINGS, decide
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
    data = _data_summary(cfg, out_dir, reps, task, progress, console)

    entries = main_entries(cfg, names) + list(extra_entries or [])
    plan = {
        e.id: [Job(e, r, run_config(cfg, e, r, out_dir, threads)) for r in reps] for e in entries
    }
    failed = _train(plan, n_jobs, "Training baselines and strategies", console, progress, metric)
    loaded = _load(plan, cfg, task, pooled, failed)
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
        failed |= _train(
            plan_abl, n_jobs, f"Ablation of {loaded[winner].entry.label}", console, progress, metric
        )
        plan |= plan_abl
        loaded |= _load(plan_abl, cfg, task, pooled, failed)

    console.print("Computing confidence intervals and robustness ...")
    results = _results(
        cfg, out_dir, loaded, info, task, metric, winner, best_single, data, pooled, absent
    )
    (out_dir / "results.json").write_text(json.dumps(_clean(results), indent=1))
    write_tables(results, out_dir)
    write_report(results, out_dir / "report.html")
    _say_done(console, results, out_dir, failed)
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


def _train(
    plan: dict[str, list[Job]],
    n_jobs: int,
    title: str,
    console: Console,
    progress: bool,
    metric: str,
) -> dict[str, str]:
    jobs = [j for js in plan.values() for j in js]
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    ]
    with Progress(*columns, console=console, disable=not progress) as bar:
        t = bar.add_task(title, total=len(jobs), last="")

        def done(job: Job, err: str | None) -> None:
            bar.update(t, advance=1, last=("FAILED " if err else "") + job.title)
            if progress and not console.is_terminal and not err:
                # A log file shows no live bar: one line per finished training instead.
                m = read_metrics(job) or {}
                val = (m.get("val") or {}).get(job.config["tasks"][0]["name"], {})
                n = int(bar.tasks[0].completed)
                console.print(
                    f"  [{n}/{len(jobs)}] {job.title}: val {_first_metric(val, metric)}, "
                    f"{m.get('train_seconds', 0):.0f} s"
                )
            if err:
                console.print(
                    f"[red]{job.title} failed[/]: {err.splitlines()[-1] if err else ''} "
                    f"(details in {job.run_dir / 'error.txt'})"
                )

        return run_jobs(jobs, n_jobs, done)


def _load(
    plan: dict[str, list[Job]], cfg: Config, task: str, pooled: bool, failed: dict[str, str]
) -> dict[str, analysis.EntryData]:
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


def _results(
    cfg: Config,
    out_dir: Path,
    loaded: dict[str, analysis.EntryData],
    info: Any,
    task: str,
    metric: str,
    winner: str,
    best_single: str,
    data: dict[str, Any],
    pooled: bool,
    absent: list[dict[str, str]],
) -> dict[str, Any]:
    n_boot = cfg.study.n_boot
    entries = [analysis.summarise(d, info, n_boot) for d in loaded.values()]
    flags = analysis.learning_flags(loaded, info)
    for e in entries:
        e["flags"] = flags.get(e["id"], [])
    entries.sort(key=lambda e: -_nan_low(e["test"][metric]["mean"]))
    by_id = {e["id"]: e for e in entries}
    best_reference = analysis.choose(loaded, ("reference",), task, metric)
    w, b = loaded[winner], loaded[best_single]
    # Sensitivity only: the best single modality and reference on test (entries are sorted by it).
    on_test = next((e["id"] for e in entries if e["kind"] == "single"), best_single)
    ref_on_test = next((e["id"] for e in entries if e["kind"] == "reference"), best_reference)

    def versus(other: str | None) -> dict[str, Any] | None:
        return (
            None if other is None else analysis.comparison(w, loaded[other], info, metric, n_boot)
        )

    comparisons = {
        "single": versus(best_single),
        "reference": versus(best_reference),
        "single_on_test": versus(on_test) if on_test != best_single else None,
        "reference_on_test": versus(ref_on_test) if ref_on_test != best_reference else None,
    }
    reps = w.jobs
    results: dict[str, Any] = {
        "study": {
            "name": cfg.name,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "task": task,
            "task_type": info.type,
            "classes": list(info.classes),
            "primary_metric": metric,
            "seeds": None if pooled else [j.rep.seed for j in reps],
            "folds": len(reps) if pooled else None,
            "n_boot": n_boot,
            "n_test": len(w.case_ids),
            "selection": f"val/{metric}",
            "config_yaml": cfg.to_yaml(),
            "results_path": str(out_dir / "results.json"),
        },
        "data": data,
        "entries": entries,
        "winner": winner,
        "best_single": best_single,
        "best_reference": best_reference,
        "best_single_on_test": on_test,
        "comparison": comparisons["single"],
        "comparisons": comparisons,
        "references_absent": absent,
        "verdict": decide(
            by_id, metric, winner, best_single, best_reference, comparisons, absent, flags
        ),
        "curves": (
            {winner: analysis.curves(w), best_single: analysis.curves(b)}
            if task_type(info).curves
            else None
        ),
        "confusion_matrix": analysis.confusion(w, info),
        "samples": samples(w, b, info, cfg),
        "ablation": None,
        "robustness": None,
        "training_curves": {
            k: analysis.training_curves(loaded[k].jobs[0].run_dir, task, metric)
            for k in (winner, best_single)
        },
    }
    mods = list(w.entry.modalities)
    without = {m: loaded.get(f"ablation_{w.entry.fusion}_minus_{m}") for m in mods}
    if cfg.study.ablation and any(without.values()):

        def ci(eid: str) -> dict[str, Any]:
            return {
                **{k: by_id[eid]["test"][metric][k] for k in ("mean", "low", "high")},
                "id": eid,
            }

        results["ablation"] = {
            "entry": winner,
            "metric": metric,
            "full": ci(winner),
            "without": {m: ci(d.entry.id) for m, d in without.items() if d is not None},
            "only": {m: ci(f"single_{m}") for m in mods if f"single_{m}" in by_id},
        }
    if cfg.study.robustness:
        removed, rates = {}, {}
        for eid in dict.fromkeys([winner, best_single]):
            # An image that boxes or masks are drawn on cannot be taken away (the heads read it).
            kept = [m for m in mods if m not in anchors(cfg)]
            removed[eid], rates[eid] = robustness(
                loaded[eid],
                info,
                metric,
                kept,
                cfg.study.missing_rates,
                pooled,
                by_id[eid]["test"][metric]["mean"],
            )
        results["robustness"] = {"metric": metric, "removed": removed, "missing_rate": rates}
    return results


def _data_summary(
    cfg: Config, out_dir: Path, reps: list[Replicate], task: str, progress: bool, console: Console
) -> dict[str, Any]:
    """Decode every file once (warming the shared cache) and count cases per split and class:
    of the one split of every seed, or of each fold (``per_fold``, with ``splits`` the first)."""
    from fusiondx.data.labelling import label_cases
    from fusiondx.data.store import prepare

    everything = Entry(
        "data", "data", "fusion", BASELINE_FUSION, tuple(m.name for m in cfg.modalities)
    )
    console.print("Reading and decoding the data once for every training ...")
    prepared = prepare(
        load_config(run_config(cfg, everything, reps[0], out_dir, None)), progress=progress
    )
    store = prepared.store
    info = next(t for t in prepared.tasks if t.name == task)
    splits = _split_counts(info, store.targets[task], store.split)
    availability = {
        m: {s: float(store.mask[store.split == s, i].mean()) for s in ("train", "val", "test")}
        for i, m in enumerate(store.modalities)
    }
    out: dict[str, Any] = {"splits": splits, "availability": availability, "per_fold": None}
    if reps[0].fold is not None:
        out["per_fold"] = [splits] + [
            _split_counts(info, lab.targets[task], lab.split)
            for lab in (
                label_cases(load_config(run_config(cfg, everything, r, out_dir, None)))
                for r in reps[1:]
            )
        ]
    return out


def _split_counts(info: Any, y: np.ndarray, split: np.ndarray) -> dict[str, Any]:
    tt = task_type(info)
    return {
        s: {"cases": int((split == s).sum()), "classes": tt.split_counts(info, y[split == s])}
        for s in ("train", "val", "test")
    }


def _say_done(
    console: Console, results: dict[str, Any], out_dir: Path, failed: dict[str, str]
) -> None:
    v = results["verdict"]
    color = {"good": "green", "meh": "yellow", "bad": "red"}[v["tone"]]
    console.print(f"\n[bold {color}]{escape(v['headline'])}[/]", highlight=False)
    for line in v["lines"]:
        style = "bold red" if line.startswith(WARNINGS) else ""
        console.print(
            f"[{style}]  - {escape(line)}[/]" if style else f"  - {escape(line)}", highlight=False
        )
    if failed:
        console.print(
            f"[yellow]{len(failed)} training(s) or reference(s) failed and are left out; see "
            "error.txt in their folders.[/]"
        )
    console.print(
        f"Wrote {out_dir / 'report.html'}\n      {out_dir / 'table.md'}, {out_dir / 'table.csv'}\n"
        f"      {out_dir / 'results.json'}\n      run folders under {out_dir / 'runs'}"
    )


def _first_metric(val: dict[str, Any], metric: str) -> str:
    """The study's metric, or failing that the first of the usual ones the run reports."""
    for k in (
        metric,
        "auroc",
        "auprc",
        "f1",
        "accuracy",
        "iou",
        "dice_lesion",
        "bleu4",
        "c_index",
        "r2",
    ):
        if isinstance(val.get(k), (int, float)):
            return f"{k} {val[k]:.3f}"
    return "n/a"


def _nan_low(x: float) -> float:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else -np.inf


def _clean(x: Any) -> Any:
    """JSON without NaN/Infinity (null instead) and with numpy scalars as plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
