"""Torch threads and OpenMP's wait policy: training epoch time alone on the machine and beside
one busy process, for the default 4-modality model and for its labs alone (a tiny MLP).

Each setting trains in a fresh process (libgomp reads ``OMP_WAIT_POLICY`` once, when torch is
first imported): every core's threads with libgomp's default policy (spin about 3 ms, then
sleep), every core's threads with ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once), and one thread
(``FUSIONDX_THREADS=1``). "Busy" runs a pure-Python busy loop on one core beside the training,
as another single-threaded job would. The median of ``--repeats`` runs per cell, seconds per
epoch after the first (which also builds the data cache and warms up).

What it answers: which setting to recommend when the machine is shared (docs/scaling.md).

Example: python -m bench threads --cases 1500 --epochs 4 --repeats 3   (about 8 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from bench._common import WORK, cohort, md_table, save

TITLE = "13. Torch threads and the OpenMP wait policy, alone and beside a busy process"

# The child: trains one model and prints its epochs' seconds as JSON.
CHILD = r"""
import json, sys, time
import lightning as L
from bench._common import default_config
from pathlib import Path

class Epochs(L.Callback):
    def __init__(self): self.times = []
    def on_train_epoch_start(self, *a): self.t = time.perf_counter()
    def on_train_epoch_end(self, *a): self.times.append(time.perf_counter() - self.t)

manifest, out, epochs, model = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
threads = int(sys.argv[5])
cfg = default_config(
    Path(manifest), out, epochs=epochs, early_stopping=None, progress=False, threads=threads
)
if model == "labs":
    cfg = cfg.model_copy(update={"modalities": [m for m in cfg.modalities if m.name == "labs"]})
cfg = cfg.model_copy(update={"name": f"threads_{model}"})
from fusiondx.engine.run import fit
import torch
clock = Epochs()
fit(cfg, overwrite=True, progress=False, callbacks=[clock])
print("EPOCHS " + json.dumps({"threads": torch.get_num_threads(), "epochs": clock.times}))
"""

# name -> (train.threads, environment changes; None removes a variable). train.threads is set
# explicitly: left unset, FusionDx would pick one thread for the labs-only model by itself.
SETTINGS: dict[str, tuple[int, dict[str, str | None]]] = {
    "all cores, default policy": (0, {"OMP_WAIT_POLICY": None, "FUSIONDX_THREADS": None}),
    "all cores, PASSIVE": (0, {"OMP_WAIT_POLICY": "PASSIVE", "FUSIONDX_THREADS": None}),
    "one thread": (1, {"OMP_WAIT_POLICY": None, "FUSIONDX_THREADS": None}),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1500, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is dropped)")
    p.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is shown")


def _env(change: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in change.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def _train(manifest: str, model: str, setting: str, args: Any) -> tuple[float, int]:
    out = WORK / "threads"
    threads, change = SETTINGS[setting]
    threads = threads or os.cpu_count() or 1
    cmd = [sys.executable, "-c", CHILD, manifest, str(out), str(args.epochs), model, str(threads)]
    done = subprocess.run(cmd, env=_env(change), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{model} / {setting} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("EPOCHS "))
    got = json.loads(line.removeprefix("EPOCHS "))
    return statistics.median(got["epochs"][1:]), int(got["threads"])


def run(args: Any) -> None:
    manifest = str(cohort(args.cases, image_size=32))
    rows = []
    for load in ("alone", "beside one busy process"):
        hog = None
        if load != "alone":
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for model in ("default (4 modalities)", "labs only"):
                key = "default" if model.startswith("default") else "labs"
                for setting in SETTINGS:
                    runs = [_train(manifest, key, setting, args) for _ in range(args.repeats)]
                    secs = [s for s, _ in runs]
                    rows.append(
                        {
                            "load": load,
                            "model": model,
                            "setting": setting,
                            "threads": runs[0][1],
                            "median_s": statistics.median(secs),
                            "runs_s": secs,
                        }
                    )
                    print(
                        f"  {load} / {model} / {setting}: "
                        + ", ".join(f"{s:.2f}" for s in secs)
                        + " s per epoch",
                        flush=True,
                    )
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    fmt = [
        {
            **r,
            "med": f"{r['median_s']:.2f}",
            "all": ", ".join(f"{s:.2f}" for s in r["runs_s"]),
        }
        for r in rows
    ]
    table = md_table(
        fmt,
        [
            ("load", "machine"),
            ("model", "model"),
            ("setting", "threads and policy"),
            ("threads", "torch threads"),
            ("med", "s / epoch (median)"),
            ("all", "each run"),
        ],
    )
    md = (
        f"{args.cases} built-in cases (32x32 images), {args.epochs} epochs per run, seconds per "
        f"epoch after the first; median of {args.repeats} runs, each a fresh process.\n\n{table}"
    )
    save("threads", {"rows": rows}, md, TITLE)
