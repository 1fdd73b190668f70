"""Shift across sites: leave-one-site-out beside the pooled split (``study --site-column site``).

For each site, the config's model (and any ``--strategies``) is trained on the other sites'
cases and tested on every case of the held-out site; validation is drawn from the training
sites (the config's validation share, whole patients, stratified by label where each class
has two patients). Beside it, the same model is trained on the config's own pooled split, and
its test cases of each site say how well that site does when the model has seen it.

Per site the results hold: the held-out metric with its bootstrap CI, the pooled model's
metric on that site's pooled test cases, the drop (pooled minus held-out, a paired bootstrap
on those same cases), and a drift score: the cross-validated AUROC of a logistic regression
telling the held-out site's fused embeddings from the training cases' (0.5 = no shift; see
:mod:`fusiondx.evaluation.drift`). Everything is read off test cases and chooses nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from fusiondx.config import Config
from fusiondx.data.sites import read_sites, site_slug
from fusiondx.evaluation.bootstrap import paired_difference, pooled_ci
from fusiondx.models.build import check_parts
from fusiondx.study import analysis
from fusiondx.study.plan import Entry, replicates, resolve_strategies, run_config
from fusiondx.study.protocols import _finish, _setup, _train_and_load
from fusiondx.study.runner import Job, threads_per_job
from fusiondx.tasks import TaskInfo, task_type

SPLIT_COLUMN = "fusiondx_site_split"


def run_leave_one_site_out(
    cfg: Config,
    out_dir: Path,
    site_column: str,
    *,
    strategies: str | list[str] | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Leave-one-site-out and the pooled split for each strategy (default: the config's
    fusion); writes ``results.json`` and ``report.html`` in ``out_dir`` and returns the results."""
    console = console or Console(stderr=True, quiet=not progress)
    task, metric, n_jobs = _setup(cfg, jobs)
    names = [cfg.fusion.name] if strategies is None else resolve_strategies(cfg, strategies)
    for s in names:
        check_parts(cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"name": s})}))
    df, sites = read_sites(cfg, site_column, purpose="for leave-one-site-out")
    out_dir = out_dir.resolve()
    (out_dir / "manifests").mkdir(parents=True, exist_ok=True)
    # Seeds, never folds: each held-out site fixes its own test cases.
    reps = replicates(cfg, seeds if seeds is not None else cfg.study.seeds, None)
    threads = threads_per_job(n_jobs) if n_jobs > 1 else cfg.train.threads
    mods = tuple(m.name for m in cfg.modalities)
    manifests = {s: _holdout_manifest(cfg, df, site_column, s, out_dir) for s in sites}
    plan: dict[str, list[Job]] = {}
    for name in names:
        e = Entry(f"{name}_pooled", f"{name}, pooled split", "fusion", name, mods)
        plan[e.id] = [Job(e, r, run_config(cfg, e, r, out_dir, threads)) for r in reps]
        for s in sites:
            e = Entry(
                f"{name}_without_{site_slug(s)}", f"{name}, {s} held out", "fusion", name, mods
            )
            plan[e.id] = []
            for r in reps:
                d = run_config(cfg, e, r, out_dir, threads)
                d["data"] |= {"manifest": str(manifests[s]), "root": str(cfg.data.data_root)}
                d["data"]["sep"] = ","
                d["data"]["split"] = {"column": SPLIT_COLUMN}
                plan[e.id].append(Job(e, r, d))
    console.print(
        f"[bold]Leave one site out[/] over '{site_column}' ({', '.join(sites)}): "
        f"{len(names)} strateg{'y' if len(names) == 1 else 'ies'} x ({len(sites)} held-out sites "
        f"+ the pooled split) x {len(reps)} seeds."
    )
    loaded, info, failed = _train_and_load(
        cfg, plan, task, n_jobs, "Training without each site", out_dir, console, progress, metric
    )
    site_of = dict(
        zip(df[cfg.data.id_column].astype(str), df[site_column].astype(str), strict=True)
    )
    console.print("Scoring each held-out site and its drift ...")
    entries: list[dict[str, Any]] = []
    for name in names:
        pooled = loaded.get(f"{name}_pooled")
        for s in sites:
            held = loaded.get(f"{name}_without_{site_slug(s)}")
            if held is None:
                continue
            entries.append(
                _site_row(name, s, held, pooled, site_of, info, metric, cfg.study.n_boot)
            )
        if pooled is not None:
            overall = analysis.summarise(pooled, info, cfg.study.n_boot)["test"][metric]
            for row in entries:
                if row["strategy"] == name and row.get("site"):
                    row["drop_vs_pooled_overall"] = overall["mean"] - row["held_out"]["mean"]
            entries.append({"strategy": name, "site": None, "pooled": overall})
    results = {
        "protocol": "sites",
        "study": cfg.name,
        "task": task,
        "metric": metric,
        "site_column": site_column,
        "sites": sites,
        "cases_per_site": {s: int((df[site_column] == s).sum()) for s in sites},
        "strategies": names,
        "seeds": len(reps),
        "drift": "cross-validated AUROC of a logistic regression telling the held-out site's "
        "fused embeddings from the training cases' (0.5: no shift, 1: fully separable)",
        "entries": entries,
        "failed": failed,
    }
    return _finish(results, out_dir, console)


def _holdout_manifest(cfg: Config, df: pd.DataFrame, column: str, site: str, out_dir: Path) -> Path:
    """The manifest with a split column: the site's cases test, the others train/val.

    Training-site cases of a patient also seen at the held-out site are left out, so that no
    patient is on both sides."""
    from sklearn.model_selection import train_test_split

    ids = df[cfg.data.id_column].astype(str)
    pcol = cfg.data.patient_column
    patient = df[pcol].fillna(ids).astype(str) if pcol else ids
    at_site = (df[column].astype(str) == site).to_numpy()
    shared = patient.isin(set(patient[at_site])).to_numpy() & ~at_site
    rest = ~at_site & ~shared
    pats = np.array(list(dict.fromkeys(patient[rest].tolist())), dtype=object)
    fr = cfg.data.split.fractions
    label = cfg.tasks[0].label if isinstance(cfg.tasks[0].label, str) else None
    strat = None
    if label and label in df.columns:
        first = df[rest].groupby(patient[rest])[label].first().reindex(pats).astype(str)
        strat = first.to_numpy() if first.value_counts().min() >= 2 else None
    seed = cfg.seed if cfg.data.split.seed is None else cfg.data.split.seed
    _, val = train_test_split(
        pats, test_size=fr[1] / (fr[0] + fr[1]), random_state=seed, stratify=strat
    )
    split = np.where(at_site, "test", np.where(patient.isin(set(val)), "val", "train"))
    out = df.loc[~shared].copy()
    out[SPLIT_COLUMN] = split[~shared]
    path = out_dir / "manifests" / f"without_{site_slug(site)}.csv"
    out.to_csv(path, index=False, lineterminator="\n")
    return path


def _subset(d: analysis.EntryData, keep: np.ndarray) -> list[pd.DataFrame]:
    return [f.loc[keep] for f in d.frames]


def _ci(frames: list[pd.DataFrame], info: TaskInfo, metric: str, n_boot: int) -> dict[str, Any]:
    tt = task_type(info)
    ci = pooled_ci(
        [tt.case_scores(info, f)[metric] for f in frames],
        len(frames[0]),
        tt.strata(info, frames[0]),
        n_boot=n_boot,
    )
    return {k: ci[k] for k in ("mean", "low", "high")}


def _site_row(
    name: str,
    site: str,
    held: analysis.EntryData,
    pooled: analysis.EntryData | None,
    site_of: dict[str, str],
    info: TaskInfo,
    metric: str,
    n_boot: int,
) -> dict[str, Any]:
    from fusiondx.engine.embeddings import run_embeddings
    from fusiondx.evaluation.drift import domain_auroc

    tt = task_type(info)
    row: dict[str, Any] = {
        "strategy": name,
        "site": site,
        "n_test": len(held.case_ids),
        "held_out": _ci(held.frames, info, metric, n_boot),
        "pooled_site": None,
        "drop": None,
    }
    if pooled is not None:
        same = np.array([c for c in pooled.case_ids if site_of.get(c) == site])
        row["n_pooled_site"] = int(same.size)
        if same.size >= 2:
            a, b = _subset(pooled, same), _subset(held, same)
            row["pooled_site"] = _ci(a, info, metric, n_boot)
            d = paired_difference(
                [tt.case_scores(info, f)[metric] for f in a],
                [tt.case_scores(info, f)[metric] for f in b],
                len(same),
                tt.strata(info, a[0]),
                n_boot=n_boot,
            )
            row["drop"] = {k: d[k] for k in ("difference", "low", "high", "p_value")}
    ids, split, emb = run_embeddings(held.jobs[0].run_dir)
    row["drift_auroc"] = domain_auroc(emb[split == "train"], emb[split == "test"])
    return row
