"""Beyond one process (issue 19): DDP training with 1 vs 2 processes, search with 1 vs 2 workers.

DDP: the default 4-modality model on the built-in cohort, trained for a fixed number of epochs
(no early stopping) with `train.devices: 1` and batch B, then with `devices: 2, strategy: ddp`
(gloo on CPU) and batch B/2 per process, so both take the same optimiser steps over the same
cases (bench/_ddp_fit.py: `fusiondx.fit(..., launch=True)`, re-run by Lightning for rank 1).
Reported: the median seconds of an epoch, training and validation, timed inside the training
loop (process start, data decoding and the process group's setup left out), and the test
metrics of both, with their difference. Threads: one process takes up to 8 of the machine's
cores, each of two processes half of them (setup_torch), as `fusiondx fit` runs them. Batch norm normalises over each process's own cases and
each process draws its own dropout masks, so the two trainings differ like two seeds would
(tests/engine/test_distributed_fit.py shows agreement to 1e-4 without either).

Search: `fusiondx search` with `--workers 1` and `--workers 2` on a fresh journal storage each,
the same number of trials over the same strategies (`concat` alone by default, so that trials
cost alike), no refit; trials per minute of wall time, worker start included.
On a 2-core machine two processes share the cores: the speed-up measured here is what a
machine with a free core per process gains at most, not what a cluster gains.

Example: python -m bench distributed --cases 1500 --epochs 3 --trials 8   (about 15 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench._common import ROOT, WORK, cohort, default_config, md_table, save

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1500, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each DDP training (fixed)")
    p.add_argument("--batch-size", type=int, default=32, help="batch of the one-process run")
    p.add_argument("--trials", type=int, default=8, help="search trials with 1 and with 2 workers")
    p.add_argument("--trial-epochs", type=int, default=2, help="epochs of each search trial")
    p.add_argument(
        "--strategies",
        default="concat",
        help="fusion strategies searched (one keeps the cost of every trial alike)",
    )


def _fit(cfg: Any, devices: int, batch: int) -> dict[str, Any]:
    """One training in new processes (bench/_ddp_fit.py, which Lightning re-runs for the other
    ranks): rank 0's metrics and the seconds of each epoch."""
    import yaml

    raw = cfg.model_dump(mode="json", exclude_unset=True)
    raw["name"] = f"ddp{devices}"
    raw["train"].update(
        devices=devices, strategy="ddp" if devices > 1 else "auto", batch_size=batch
    )
    path = WORK / "distributed" / f"ddp{devices}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    out = path.with_suffix(".json")
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, str(ROOT / "bench" / "_ddp_fit.py"), str(path), str(out)]
    print(f"  {devices} process(es): {' '.join(cmd[1:])}", flush=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode or not out.is_file():
        raise SystemExit(done.stderr[-3000:])
    return json.loads(out.read_text())


def _search(cfg: Any, workers: int, trials: int, strategies: str) -> dict[str, Any]:
    import shutil

    from rich.console import Console

    from fusiondx.study.search import run_search

    out = WORK / "distributed" / f"search_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    study, _ = run_search(
        cfg,
        out,
        trials=trials,
        workers=workers,
        storage=f"journal://{out / 'search.journal'}",  # the same storage for 1 and 2 workers
        strategies=strategies,
        refit=False,
        console=Console(stderr=True),
    )
    seconds = time.perf_counter() - t
    numbers = sorted(tr.number for tr in study.trials)
    if numbers != list(range(trials)):
        raise SystemExit(f"trials ran {numbers}, not each of 0..{trials - 1} once")
    return {
        "workers": workers,
        "trials": trials,
        "seconds": round(seconds, 1),
        "trials_per_minute": round(trials / seconds * 60, 2),
        "best": round(float(study.best_value), 4),
    }


def run(args: argparse.Namespace) -> None:
    manifest = cohort(args.cases)
    out = WORK / "distributed" / "runs"
    base = default_config(
        manifest, out, epochs=args.epochs, early_stopping=None, progress=False, small_data="off"
    )
    print("DDP: the default model with 1 and 2 training processes ...", flush=True)
    timed = {d: _fit(base, d, args.batch_size // d) for d in (1, 2)}
    fits = {d: r["metrics"] for d, r in timed.items()}
    epoch_s = {d: statistics.median(r["epoch_seconds"]) for d, r in timed.items()}
    ddp_rows = []
    for d, m in fits.items():
        t = m["test"]["diagnosis"]
        ddp_rows.append(
            {
                "setup": f"{d} process{'es' if d > 1 else ''} x batch {args.batch_size // d}",
                "epoch_s": f"{epoch_s[d]:.2f}",
                "auroc": f"{t['auroc']:.4f}",
                "auprc": f"{t['auprc']:.4f}",
                "acc": f"{t['accuracy']:.4f}",
            }
        )
    one, two = (fits[d]["test"]["diagnosis"] for d in (1, 2))
    diff = {k: two[k] - one[k] for k in ("auroc", "auprc", "accuracy") if k in one}
    speedup = epoch_s[1] / epoch_s[2]
    print("Search: trials per minute with 1 and 2 workers ...", flush=True)
    search_cfg = base.model_copy(
        update={
            "train": base.train.model_copy(update={"epochs": args.trial_epochs}),
            "name": "distributed_search",
        }
    )
    searches = [_search(search_cfg, w, args.trials, args.strategies) for w in (1, 2)]
    md = (
        md_table(
            ddp_rows,
            [
                ("setup", "training"),
                ("epoch_s", "s / epoch"),
                ("auroc", "test AUROC"),
                ("auprc", "test AUPRC"),
                ("acc", "test accuracy"),
            ],
        )
        + f"\n\n2 processes vs 1: {speedup:.2f}x the epochs per second; test AUROC "
        f"{diff['auroc']:+.4f}, accuracy {diff['accuracy']:+.4f} (batch norm and dropout per "
        f"process; {args.cases} cases, {args.epochs} epoch(s), gloo on CPU).\n\n"
        + md_table(
            [{**s, "tpm": f"{s['trials_per_minute']:.2f}"} for s in searches],
            [
                ("workers", "search workers"),
                ("trials", "trials"),
                ("seconds", "wall s"),
                ("tpm", "trials / minute"),
                ("best", "best val AUROC"),
            ],
        )
        + f"\n\nEach search: a fresh journal storage, strategies {args.strategies}, "
        f"{args.trial_epochs} epoch(s) a trial, no refit; every trial number ran once (checked)."
    )
    print(md)
    results = {
        "cases": args.cases,
        "epochs": args.epochs,
        "ddp": {
            str(d): {
                "epoch_seconds": timed[d]["epoch_seconds"],
                **{k: m[k] for k in ("train_seconds", "epochs_run", "test")},
            }
            for d, m in fits.items()
        },
        "ddp_difference": diff,
        "ddp_speedup": speedup,
        "search": searches,
    }
    save("distributed", results, md, "Beyond one process: DDP training and distributed search")
