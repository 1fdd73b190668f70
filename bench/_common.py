"""What every benchmark shares: the machine, the cohorts, the default model, the report file."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("FUSIONDX_BENCH_WORK", ROOT / ".bench-work"))
RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "BENCHMARKS.md"


def machine() -> dict[str, Any]:
    """The machine a number was measured on, as a reader needs it to compare."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "torch": torch.__version__,
        "load_1min": round(os.getloadavg()[0], 2),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def machine_line(m: dict[str, Any]) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB{gpu}; torch {m['torch']} "
        f"({m['threads']} threads), Python {m['python']}; 1-min load average at the end {m['load_1min']} (its own threads included)"
    )


def warn_if_busy() -> None:
    """Other processes on a 2-core machine make small-model timings worthless: say so up front."""
    load = os.getloadavg()[0]
    if load > 0.7 * (os.cpu_count() or 1):
        print(
            f"Warning: the 1-minute load average is {load:.1f} on {os.cpu_count()} cores; other "
            "processes are running and the timings will be too slow and noisy.",
            flush=True,
        )


def command_line() -> str:
    return "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def save(name: str, results: dict[str, Any], markdown: str, title: str) -> None:
    """Write the raw numbers to bench/results/<name>.json and replace the section in BENCHMARKS.md."""
    m = machine()
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "command": command_line(), "date": stamp, "machine": m, **results}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    body = (
        f"<!-- bench:{name} -->\n### {title}\n\n"
        f"`{command_line()}` — {stamp} — {machine_line(m)}\n\n{markdown.strip()}\n<!-- /bench:{name} -->"
    )
    text = REPORT.read_text() if REPORT.is_file() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = (
        pattern.sub(lambda _: body, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + body + "\n"
    )
    REPORT.write_text(text)
    print(f"Wrote the '{name}' section of {REPORT} and {RESULTS / (name + '.json')}")


def cohort(
    n_cases: int, *, image_size: int = 64, signal_format: str = "wfdb", seed: int = 0
) -> Path:
    """A built-in cohort under the bench work folder, made once and reused by later runs."""
    from fusiondx.datasets.synthetic import make_cohort

    out = WORK / "cohorts" / f"n{n_cases}_img{image_size}_{signal_format}_s{seed}"
    manifest = out / "manifest.csv"
    if not (out / ".complete").is_file():
        t = time.perf_counter()
        print(f"Making a {n_cases}-case cohort in {out} ...", flush=True)
        make_cohort(
            out,
            n_cases=n_cases,
            seed=seed,
            image_size=image_size,
            signal_format=signal_format,
            progress=sys.stderr.isatty(),
        )
        (out / ".complete").write_text(f"{time.perf_counter() - t:.1f} s\n")
    return manifest


def default_config(manifest: Path, out: Path, **train: Any) -> Any:
    """The default 4-modality model (what `make demo` trains) over ``manifest``."""
    from fusiondx.config import Config
    from fusiondx.demo import DEMO_CONFIG

    raw = copy.deepcopy(DEMO_CONFIG)
    raw["data"]["manifest"] = str(manifest)
    raw["output_dir"] = str(out)
    raw["train"].update(train)
    return Config.model_validate(raw)


@contextmanager
def timer(into: dict[str, float], key: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    into[key] = into.get(key, 0.0) + time.perf_counter() - t


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def md_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A Markdown table of ``rows``; ``columns`` are (key, header) pairs; floats pre-formatted."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---:" if i else ":---" for i in range(len(columns))) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k, _ in columns) + " |")
    return "\n".join(lines)
