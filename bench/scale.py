"""Scale: epoch time and peak memory from 1k to 100k cases, for 1 to 6 modalities, and for
cohorts larger than memory (``--ltm-cases``: `fusiondx fit`, 1 epoch, tabular + signal).

Each point runs in its own process (so its peak memory is its own) on a built-in cohort with
32x32 images and .npy ECGs, with the disk cache (`data.cache: disk`): decoded arrays are
written once to memory-mapped files and training streams batches from them. Peak memory is the
process's resident set, sampled every 50 ms; file-backed pages of the cache count in it (the
kernel can drop them), so the anonymous part (resident minus shared) is reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import WORK, cohort, default_config, md_table, save

TITLE = "5. Scale: epoch time and peak memory, 1k to 100k cases and 1 to 6 modalities"
TITLE_LTM = "5b. Scale: cohorts larger than memory (sharded disk cache)"
LAB = ["crp", "troponin", "bnp", "wbc"]
VITALS = ["spo2", "heart_rate_vitals"]
DEMOGRAPHICS = ["age", "sex", "smoker"]


def modalities(k: int, base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """k modalities: labs, + cxr, + ecg, + report (the default model), then the tabular data
    split into labs, vitals and demographics as their own modalities (5 and 6)."""
    by = {m["name"]: m for m in base}
    tab = by["labs"]
    if k <= 4:
        return [by[n] for n in ("labs", "cxr", "ecg", "report")[:k]]
    groups = (
        [("labs", LAB), ("vitals", VITALS), ("demographics", DEMOGRAPHICS)]
        if k == 6
        else [("labs", LAB + VITALS), ("demographics", DEMOGRAPHICS)]
    )
    tabs = [
        {
            **tab,
            "name": n,
            "columns": cols,
            "categorical": [c for c in cols if c in tab["categorical"]],
        }
        for n, cols in groups
    ]
    return [by["cxr"], by["ecg"], by["report"], *tabs]


class PeakMemory:
    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.rss = self.anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            m = self.proc.memory_info()
            self.rss, self.anon = max(self.rss, m.rss), max(self.anon, m.rss - m.shared)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def worker(cases: int, k: int, epochs: int) -> dict[str, Any]:
    """One point, measured in this process: decode (or open the cache), then train ``epochs``."""
    from bench.limit import step, training_setup

    manifest = cohort(cases, image_size=32, signal_format="npy")
    cfg = default_config(manifest, WORK / "runs", batch_size=64)
    raw = cfg.model_dump(mode="json")
    for m in raw["modalities"]:
        if m["kind"] == "signal":
            m["preprocessing"]["source_rate"] = (
                100  # .npy records carry no rate; the cohort's is 100 Hz
            )
    raw["modalities"] = modalities(k, raw["modalities"])
    raw["data"]["cache"] = "disk"
    raw["data"]["cache_dir"] = str(WORK / "cache")
    cfg = type(cfg).model_validate(raw)
    import torch

    with PeakMemory() as mem:
        t = time.perf_counter()
        _, task, loader = training_setup(cfg)
        setup_s = time.perf_counter() - t
        opt = torch.optim.Adam(task.parameters(), lr=cfg.train.lr)
        task.train()
        times = []
        for _ in range(epochs):
            t = time.perf_counter()
            for batch in loader:
                step(task, opt, batch)
            times.append(time.perf_counter() - t)
    return {
        "cases": cases,
        "modalities": k,
        "train_cases": len(loader.dataset),
        "setup_s": setup_s,
        "epoch_s": min(times),
        "peak_rss_gib": mem.rss / 2**30,
        "peak_anon_gib": mem.anon / 2**30,
    }


def _point(cases: int, k: int, epochs: int) -> dict[str, Any]:
    cohort(cases, image_size=32, signal_format="npy")  # made here, outside the measured process
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--worker", str(cases), str(k), str(epochs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"scale point {cases} cases / {k} modalities failed:\n{out.stderr[-3000:]}"
        )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  {cases} cases, {k} modalities: epoch {r['epoch_s']:.1f} s, peak {r['peak_rss_gib']:.2f} GiB "
        f"(anonymous {r['peak_anon_gib']:.2f} GiB), setup {r['setup_s']:.1f} s",
        flush=True,
    )
    return r


def _fmt(r: dict[str, Any]) -> dict[str, str]:
    return {
        "n": f"{r['cases']:,}",
        "k": str(r["modalities"]),
        "train": f"{r['train_cases']:,}",
        "setup": f"{r['setup_s']:.1f}",
        "epoch": f"{r['epoch_s']:.1f}",
        "us": f"{1e6 * r['epoch_s'] / r['train_cases']:.0f}",
        "rss": f"{r['peak_rss_gib']:.2f}",
        "anon": f"{r['peak_anon_gib']:.2f}",
    }


COLUMNS = [
    ("n", "cases"),
    ("k", "modalities"),
    ("train", "train cases"),
    ("setup", "decode/open s"),
    ("epoch", "epoch s"),
    ("us", "µs per train case"),
    ("rss", "peak RSS GiB"),
    ("anon", "peak anonymous GiB"),
]


def tiled_cohort(n_cases: int, base: int = 2000) -> Path:
    """A tabular + signal cohort of ``n_cases`` rows made from a ``base``-case built-in cohort:
    row i repeats base row ``i % base`` under its own case and patient id (so the split sees
    ``n_cases`` patients). Its ECG files are the base cohort's (its data root), shared between
    the copies: decoding still reads one file per case, while making a million-case cohort
    costs a CSV, not a million files."""
    import numpy as np
    import pandas as pd

    src = cohort(base, image_size=32, signal_format="npy")
    out = WORK / "cohorts" / f"tiled{n_cases}_from{base}"
    manifest = out / "manifest.csv"
    if (out / ".complete").is_file():
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(src, usecols=lambda c: c not in ("image", "report", "findings_text", "mask"))
    with manifest.open("w") as fh:
        for start in range(0, n_cases, 100_000):  # in blocks: the generator holds no whole cohort
            i = np.arange(start, min(start + 100_000, n_cases))
            block = df.iloc[i % base].copy()
            block["case_id"] = [f"case_{j:07d}" for j in i]
            block["patient_id"] = [f"pat_{j:07d}" for j in i]
            block.to_csv(fh, index=False, header=start == 0)
    (out / ".complete").write_text("ok\n")
    return manifest


class _EpochTimer:
    """Seconds of each training epoch (a Lightning callback)."""

    def __init__(self) -> None:
        import lightning as L

        outer = self

        class _CB(L.Callback):
            def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
                outer.t = time.perf_counter()

            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                outer.epochs.append(time.perf_counter() - outer.t)

        self.t, self.epochs, self.callback = 0.0, [], _CB()


def ltm_worker(cases: int) -> dict[str, Any]:
    """One larger-than-memory point in this process: decode into the sharded disk cache
    (``prepare``), then ``fusiondx.fit`` for 1 epoch reading that cache; peak memory of both."""
    import resource

    import fusiondx
    from fusiondx.data.store import prepare

    manifest = tiled_cohort(cases)
    base = cohort(2000, image_size=32, signal_format="npy").parent
    cfg = default_config(manifest, WORK / "runs", batch_size=64, epochs=1, early_stopping=None)
    raw = cfg.model_dump(mode="json")
    raw["name"] = f"ltm{cases}"
    by = {m["name"]: m for m in raw["modalities"]}
    by["ecg"]["preprocessing"]["source_rate"] = 100  # .npy records carry no rate
    raw["modalities"] = [by["labs"], by["ecg"]]
    raw["data"].update(cache="disk", cache_dir=str(WORK / "cache"), root=str(base))
    raw["train"]["progress"] = False
    cfg = type(cfg).model_validate(raw)
    timer = _EpochTimer()
    with PeakMemory() as mem:
        t = time.perf_counter()
        prepared = prepare(cfg)
        decode_s = time.perf_counter() - t
        train_cases = int(len(prepared.store.indices("train")))
        del prepared
        t = time.perf_counter()
        fusiondx.fit(cfg, overwrite=True, callbacks=[timer.callback])
        fit_s = time.perf_counter() - t
    return {
        "cases": cases,
        "train_cases": train_cases,
        "decode_s": decode_s,
        "fit_s": fit_s,
        "epoch_s": min(timer.epochs),
        "peak_rss_gib": max(mem.rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        / 2**30,
        "peak_anon_gib": mem.anon / 2**30,
    }


def _ltm_point(cases: int) -> dict[str, Any]:
    tiled_cohort(cases)  # made here, outside the measured process
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--ltm-worker", str(cases)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"larger-than-memory point {cases} cases failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  {cases} cases (labs + ecg): decode {r['decode_s']:.0f} s, epoch {r['epoch_s']:.1f} s, "
        f"fit {r['fit_s']:.0f} s, peak {r['peak_rss_gib']:.2f} GiB (anonymous "
        f"{r['peak_anon_gib']:.2f} GiB)",
        flush=True,
    )
    return r


LTM_COLUMNS = [
    ("n", "cases"),
    ("train", "train cases"),
    ("decode", "decode s"),
    ("epoch", "epoch s"),
    ("us", "µs per train case"),
    ("rel", "vs smallest"),
    ("fit", "fit s (1 epoch, val, test)"),
    ("rss", "peak RSS GiB"),
    ("anon", "peak anonymous GiB"),
]


def ltm_table(rows: list[dict[str, Any]]) -> str:
    """The larger-than-memory table and its verdict (peak < 4 GiB, time per case within 20%)."""
    base = rows[0]["epoch_s"] / rows[0]["train_cases"]
    out = []
    for r in rows:
        per = r["epoch_s"] / r["train_cases"]
        out.append(
            {
                "n": f"{r['cases']:,}",
                "train": f"{r['train_cases']:,}",
                "decode": f"{r['decode_s']:.0f}",
                "epoch": f"{r['epoch_s']:.1f}",
                "us": f"{1e6 * per:.0f}",
                "rel": f"{per / base:.2f}x",
                "fit": f"{r['fit_s']:.0f}",
                "rss": f"{r['peak_rss_gib']:.2f}",
                "anon": f"{r['peak_anon_gib']:.2f}",
            }
        )
    peak = max(r["peak_rss_gib"] for r in rows)
    worst = max(r["epoch_s"] / r["train_cases"] for r in rows) / base
    return (
        "Cohorts larger than memory: `fusiondx fit` for 1 epoch on tabular (`labs`) + ECG "
        "(`ecg`, 3x500) cases, disk cache in shards (`data.cache_shard_mb`, default 256), "
        "batch size 64; the cohort repeats a 2,000-case built-in cohort under new case and "
        "patient ids (`bench/scale.py` `tiled_cohort`). Decoding into the cache and the fit "
        "run in one process; peak RSS is of both.\n\n"
        f"{md_table(out, LTM_COLUMNS)}\n\n"
        f"Peak resident memory {peak:.2f} GiB (goal < 4 GiB: {'met' if peak < 4 else 'not met'}); "
        f"time per training case at most {worst:.2f}x the smallest cohort's (goal within 1.2x: "
        f"{'met' if worst <= 1.2 else 'not met'})."
    )


def run(args: Any) -> None:
    if args.ltm_only:
        rows = [_ltm_point(n) for n in args.ltm_cases]
        save("scale_ltm", {"larger_than_memory": rows}, ltm_table(rows), TITLE_LTM)
        return
    by_cases = [_point(n, 4, args.epochs) for n in args.cases]
    by_mods = [_point(args.modality_cases, k, args.epochs) for k in range(1, 7)]
    per_case = [r["epoch_s"] / r["train_cases"] for r in by_cases]
    linear = max(per_case) / min(per_case)
    peak = max(r["peak_rss_gib"] for r in by_cases)
    md = (
        f"Default model layout (cxr 32x32 `cnn`, ECG 3x500 `cnn1d`, report `text_transformer`, labs "
        f"`mlp`, concat fusion), batch size 64, disk cache, {args.epochs} epoch(s) per point (fastest "
        f"shown). 'decode/open' is the first run's decoding into the cache, or opening the cache.\n\n"
        f"By cases (4 modalities):\n\n{md_table([_fmt(r) for r in by_cases], COLUMNS)}\n\n"
        f"By modalities ({args.modality_cases:,} cases):\n\n{md_table([_fmt(r) for r in by_mods], COLUMNS)}\n\n"
        f"Time per training case varies by a factor {linear:.2f} from the smallest to the largest cohort "
        f"(linear: {'yes' if linear < 1.5 else 'no'}); peak resident memory {peak:.2f} GiB (target < 4 GB: "
        f"{'met' if peak * 2**30 / 1e9 < 4 else 'not met'})."
    )
    save("scale", {"by_cases": by_cases, "by_modalities": by_mods}, md, TITLE)
    rows = [_ltm_point(n) for n in args.ltm_cases]
    save("scale_ltm", {"larger_than_memory": rows}, ltm_table(rows), TITLE_LTM)


def add_arguments(p: Any) -> None:
    p.add_argument(
        "--cases",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1000, 10000, 100000],
        help="comma-separated cohort sizes",
    )
    p.add_argument("--modality-cases", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--ltm-cases",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10000, 100000, 1000000],
        help="comma-separated cohort sizes of the larger-than-memory table (smallest first)",
    )
    p.add_argument(
        "--ltm-only",
        action="store_true",
        help="run only the larger-than-memory table (its own section, 5b)",
    )


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--ltm-worker":
    print(json.dumps(ltm_worker(int(sys.argv[2]))))
