"""Scale: epoch time and peak memory from 1k to 100k cases, and for 1 to 6 modalities.

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
from typing import Any

from bench._common import WORK, cohort, default_config, md_table, save

TITLE = "5. Scale: epoch time and peak memory, 1k to 100k cases and 1 to 6 modalities"
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


def run(args: Any) -> None:
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


def add_arguments(p: Any) -> None:
    p.add_argument(
        "--cases",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1000, 10000, 100000],
        help="comma-separated cohort sizes",
    )
    p.add_argument("--modality-cases", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=1)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
