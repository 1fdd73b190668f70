"""The study's two representation-learning protocols, each in its own folder with a report.

- **Label efficiency** (``--label-fraction 0.1,0.3,1.0``): the config's model trained on a share
  of the training labels (whole patients, stratified, nested; :mod:`fusiondx.data.protocols`),
  from scratch and from encoders pretrained on every case (``fusiondx pretrain``, run here first
  unless ``--pretrained`` names an ``encoders.pt``). Validation and test are the full ones at
  every share, so the curves are comparable; at each share the paired bootstrap difference
  pretrained - scratch says whether pretraining helped.
- **Training-time missingness** (``--train-missing 0,0.3,0.6``): every strategy trained with that
  share of each modality removed from its training cases, then tested with 0-100% of each
  modality removed (the study's robustness curves). The robustness score of an entry is its
  mean test metric over every removed modality and rate; the report names the strategy that
  degrades most gracefully. It is read off the test cases and describes, it does not select.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console

from fusiondx.config import Config, load_config
from fusiondx.errors import ConfigError, RunError
from fusiondx.models.build import check_parts
from fusiondx.study import analysis
from fusiondx.study._console import train_plan
from fusiondx.study._results import json_clean
from fusiondx.study.plan import Entry, replicates, resolve_strategies, run_config
from fusiondx.study.protocol_report import write_protocol_report
from fusiondx.study.robustness import robustness
from fusiondx.study.runner import Job, threads_per_job
from fusiondx.study.study import load_entries, study_metric
from fusiondx.tasks import TaskInfo


def parse_shares(text: str, what: str, *, low_open: bool) -> list[float]:
    """``"0.1,0.3,1"`` -> [0.1, 0.3, 1.0], checked to lie in (0, 1] or [0, 1)."""
    try:
        values = sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(
            f"{what} '{text}' is not a comma-separated list of numbers.",
            fix=f"e.g. {what} {'0.1,0.3,1.0' if low_open else '0,0.3,0.6'}",
        ) from None
    ok = (lambda v: 0 < v <= 1) if low_open else (lambda v: 0 <= v < 1)
    bad = [v for v in values if not ok(v)]
    if not values or bad:
        raise ConfigError(
            f"{what} needs shares in {'(0, 1]' if low_open else '[0, 1)'}; got {text!r}.",
            fix=f"e.g. {what} {'0.1,0.3,1.0' if low_open else '0,0.3,0.6'}",
        )
    return values


def _pct(v: float) -> str:
    return f"{round(v * 100):d}%"


def _setup(cfg: Config, jobs: int | None) -> tuple[str, str, int]:
    """The study's task, its metric and the parallel trainings."""
    check_parts(cfg)
    task = cfg.study.task or cfg.tasks[0].name
    return task, study_metric(cfg, task), jobs or cfg.study.jobs


def _pretrain_once(cfg: Config, out_dir: Path, console: Console, progress: bool) -> Path:
    """``out_dir/pretrain/encoders.pt``, pretrained on every case unless it is already there
    for this very config."""
    from fusiondx.engine.pretrain import pretrain

    d = cfg.model_dump(mode="json", exclude_unset=True)
    d |= {"name": "pretrain", "output_dir": str(out_dir)}
    d.pop("study", None)
    d.setdefault("train", {})["progress"] = False
    pcfg = load_config(d)
    enc = pcfg.run_dir / "encoders.pt"
    saved = pcfg.run_dir / "config.yaml"
    same = saved.is_file() and yaml.safe_load(saved.read_text()) == yaml.safe_load(pcfg.to_yaml())
    if enc.is_file() and same:
        console.print(f"Reusing the pretrained encoders in {enc}")
        return enc
    console.print(
        f"Pretraining the encoders on every case ({', '.join(o.name for o in cfg.pretrain.objectives)}) ..."
    )
    pretrain(pcfg, overwrite=True, progress=progress)
    return enc


def run_label_efficiency(
    cfg: Config,
    out_dir: Path,
    fractions: Sequence[float],
    *,
    pretrained: Path | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Scratch vs pretrained at each label fraction; writes results.json and report.html."""
    console = console or Console(stderr=True, quiet=not progress)
    task, metric, n_jobs = _setup(cfg, jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    enc = pretrained or _pretrain_once(cfg, out_dir, console, progress)
    reps = replicates(cfg, seeds, None)
    threads = threads_per_job(n_jobs) if n_jobs > 1 else cfg.train.threads
    mods = tuple(m.name for m in cfg.modalities)
    plan: dict[str, list[Job]] = {}
    arms: dict[str, tuple[float, str]] = {}
    for f in fractions:
        for arm in ("scratch", "pretrained"):
            e = Entry(f"lf{f:g}_{arm}", f"{_pct(f)} labels, {arm}", "fusion", cfg.fusion.name, mods)
            arms[e.id] = (f, arm)
            plan[e.id] = []
            for r in reps:
                d = run_config(cfg, e, r, out_dir, threads)
                d["data"]["label_fraction"] = f
                if arm == "pretrained":
                    for m in d["modalities"]:
                        m.setdefault("encoder", {})["init"] = str(Path(enc).resolve())
                plan[e.id].append(Job(e, r, d))
    console.print(
        f"[bold]Label efficiency of '{cfg.fusion.name}'[/]: {len(fractions)} label fractions x "
        f"scratch/pretrained x {len(reps)} seeds, test {metric} on the full test split."
    )
    loaded, info, failed = _train_and_load(
        cfg,
        plan,
        task,
        n_jobs,
        "Training at each label fraction",
        out_dir,
        console,
        progress,
        metric,
    )
    n_boot = cfg.study.n_boot
    rows = []
    for f in fractions:
        a, b = loaded.get(f"lf{f:g}_pretrained"), loaded.get(f"lf{f:g}_scratch")
        row: dict[str, Any] = {"fraction": f}
        for arm, ed in (("pretrained", a), ("scratch", b)):
            if ed is not None:
                s = analysis.summarise(ed, info, n_boot)
                row[arm] = s["test"][metric] | {"train_cases": _train_cases(ed)}
        if a is not None and b is not None:
            row["difference"] = analysis.comparison(a, b, info, metric, n_boot)
        rows.append(row)
    retrieval_file = Path(enc).parent / "retrieval.json"
    results = {
        "protocol": "label_efficiency",
        "study": cfg.name,
        "task": task,
        "metric": metric,
        "fusion": cfg.fusion.name,
        "encoders": str(enc),
        "seeds": len(reps),
        "rows": rows,
        "retrieval": json.loads(retrieval_file.read_text()) if retrieval_file.is_file() else None,
        "failed": failed,
    }
    return _finish(results, out_dir, console)


def run_missing_training(
    cfg: Config,
    out_dir: Path,
    shares: Sequence[float],
    *,
    strategies: str | list[str] | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every strategy trained at each missingness share, tested at 0-100% missing."""
    console = console or Console(stderr=True, quiet=not progress)
    task, metric, n_jobs = _setup(cfg, jobs)
    names = resolve_strategies(cfg, strategies)
    for s in names:
        check_parts(cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"name": s})}))
    out_dir.mkdir(parents=True, exist_ok=True)
    reps = replicates(cfg, seeds, None)
    threads = threads_per_job(n_jobs) if n_jobs > 1 else cfg.train.threads
    mods = tuple(m.name for m in cfg.modalities)
    plan: dict[str, list[Job]] = {}
    for s in names:
        for share in shares:
            e = Entry(
                f"{s}_tm{share:g}", f"{s}, {_pct(share)} missing in training", "fusion", s, mods
            )
            plan[e.id] = []
            for r in reps:
                d = run_config(cfg, e, r, out_dir, threads)
                d["data"]["train_missing"] = share
                plan[e.id].append(Job(e, r, d))
    console.print(
        f"[bold]Training with missing modalities[/]: {len(names)} strategies x "
        f"{len(shares)} shares x {len(reps)} seeds; each tested with 0-100% of each modality removed."
    )
    loaded, info, failed = _train_and_load(
        cfg,
        plan,
        task,
        n_jobs,
        "Training with modalities removed",
        out_dir,
        console,
        progress,
        metric,
    )
    console.print("Testing every model with modalities removed ...")
    entries = []
    for s in names:
        for share in shares:
            ed = loaded.get(f"{s}_tm{share:g}")
            if ed is None:
                continue
            summary = analysis.summarise(ed, info, cfg.study.n_boot)
            complete = summary["test"][metric]["mean"]
            removed, curves = robustness(
                ed, info, metric, mods, cfg.study.missing_rates, complete=complete
            )
            scores = [v for m in mods for v in curves[m]]
            entries.append(
                {
                    "strategy": s,
                    "train_missing": share,
                    "test": summary["test"][metric],
                    "removed": removed,
                    "curves": curves,
                    "robustness": float(np.nanmean(scores)),
                    "worst": float(np.nanmin([removed[m] for m in mods])),
                }
            )
    best = max(entries, key=lambda e: e["robustness"]) if entries else None
    results = {
        "protocol": "train_missing",
        "study": cfg.name,
        "task": task,
        "metric": metric,
        "strategies": names,
        "shares": list(shares),
        "test_rates": list(cfg.study.missing_rates),
        "seeds": len(reps),
        "entries": entries,
        "most_robust": best and {k: best[k] for k in ("strategy", "train_missing", "robustness")},
        "failed": failed,
    }
    return _finish(results, out_dir, console)


def _train_cases(d: analysis.EntryData) -> int:
    return int(d.metrics[0].get("cases", {}).get("train", 0))


def _train_and_load(
    cfg: Config,
    plan: dict[str, list[Job]],
    task: str,
    n_jobs: int,
    title: str,
    out_dir: Path,
    console: Console,
    progress: bool,
    metric: str,
) -> tuple[dict[str, analysis.EntryData], TaskInfo, dict[str, str]]:
    """Train the plan (skipping finished runs), load the finished entries and the task's info."""
    failed = train_plan(plan, n_jobs, title, console, progress, metric)
    loaded = load_entries(plan, cfg, task, False, failed)
    if not loaded:
        raise RunError("No training finished.", file=out_dir, fix="see the runs' error.txt files")
    return loaded, analysis.task_info(plan[next(iter(loaded))][0].run_dir, task), failed


def _finish(results: dict[str, Any], out_dir: Path, console: Console) -> dict[str, Any]:
    (out_dir / "results.json").write_text(json.dumps(json_clean(results), indent=1))
    report = write_protocol_report(results, out_dir / "report.html")
    if results["failed"]:
        console.print(f"[red]{len(results['failed'])} training(s) failed[/]: see their error.txt")
    console.print(f"Wrote {report} and {out_dir / 'results.json'}")
    return results
