"""The served model under load: `fusiondx serve` of the default 4-modality model, cases uploaded
as files (PNG image, WFDB .hea + .dat ECG, report text, labs), at concurrency 1, 8 and 32.

A bounded closed-loop load generator (httpx.AsyncClient on loopback): at each concurrency,
that many clients send requests back to back until ``--requests`` are answered or
``--seconds`` have passed, whichever comes first. Reported: p50 / p99 latency, requests per
second, failed requests (any non-200 or transport error) and the server's peak resident memory
(its process tree, sampled with psutil). Every answer includes the per-modality Shapley
contributions (the encoders once, the fusion + heads under the 2^4 = 16 presence masks);
Grad-CAM is not asked for. Goal on a 2-core machine: p99 <= 50 ms at concurrency 8, no failure at 32.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import WORK, cohort, default_config, md_table, save

TITLE = "Served model under load: `fusiondx serve`, files uploaded, concurrency 1 / 8 / 32"
LABS = ["age", "sex", "crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals", "smoker"]


def add_arguments(p: Any) -> None:
    p.add_argument("--cases", type=int, default=2000, help="built-in cohort size to train on")
    p.add_argument(
        "--epochs", type=int, default=3, help="training epochs (latency does not depend on them)"
    )
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    p.add_argument(
        "--requests", type=int, default=1000, help="requests per concurrency level (at most)"
    )
    p.add_argument("--seconds", type=float, default=60.0, help="time limit per concurrency level")
    p.add_argument("--workers", type=int, default=1, help="`fusiondx serve --workers`")
    p.add_argument("--threads", type=int, default=None, help="`fusiondx serve --threads`")
    p.add_argument("--warmup", type=int, default=20, help="requests sent before measuring")


def _run_dir(args: Any) -> Path:
    """The default model trained on the cohort (reused when already there)."""
    from fusiondx.engine.run import fit

    manifest = cohort(args.cases)
    out = WORK / "serve_runs" / f"n{args.cases}_e{args.epochs}"
    cfg = default_config(manifest, out, epochs=args.epochs, early_stopping=None)
    run_dir = out / cfg.name
    if not (run_dir / "metrics.json").is_file():
        print(
            f"Training the default model ({args.epochs} epochs on {args.cases} cases) ...",
            flush=True,
        )
        run_dir = fit(cfg).run_dir
    return run_dir


def payloads(
    manifest: Path, n: int, labs: list[str] | None = None
) -> list[tuple[list[Any], dict[str, str]]]:
    """Multipart (files, data) of up to ``n`` cohort cases with every modality present
    (``labs``: the model's tabular columns, default the demo model's)."""
    labs = LABS if labs is None else labs
    root = manifest.parent
    df = pd.read_csv(manifest).dropna(subset=["image", "ecg", "report"]).head(n)
    out = []
    for _, row in df.iterrows():
        hea = root / row.ecg
        files = [
            ("cxr", ("image.png", (root / row.image).read_bytes(), "image/png")),
            ("ecg", ("ecg.hea", hea.read_bytes(), "text/plain")),
            ("ecg", ("ecg.dat", hea.with_suffix(".dat").read_bytes(), "application/octet-stream")),
        ]
        data = {"report": str(row.report)}
        data.update({c: str(row[c]) for c in labs if c in row and pd.notna(row[c])})
        out.append((files, data))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakMemory:
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def start_server(
    run_dir: Path, port: int, workers: int, threads: int | None
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "fusiondx",
        "serve",
        str(run_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "FUSIONDX_TOKEN": ""}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"`fusiondx serve` exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /health in time")


async def load(
    url: str, cases: list[Any], concurrency: int, requests: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` clients back to back until ``requests`` are done or ``seconds`` pass."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    # Each case's multipart body encoded once: the same bytes every time it is sent, without
    # the generator spending a millisecond of the machine's two cores re-encoding it per request.
    bodies = []
    for files, data in cases:
        req = httpx.Request("POST", url + "/predict", files=files, data=data)
        bodies.append((req.read(), {"content-type": req.headers["content-type"]}))
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            nonlocal sent
            while sent < requests and time.monotonic() < deadline:
                body, headers = bodies[sent % len(bodies)]
                sent += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/predict", content=body, headers=headers)
                    ok = r.status_code == 200
                    if not ok:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    ok = False
                    errors.append(repr(e))
                if ok:
                    latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return {
        "concurrency": concurrency,
        "requests": sent,
        "ok": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "rps": len(latencies) / wall if wall > 0 else float("nan"),
        "seconds": wall,
    }


def run(args: Any) -> None:
    run_dir = _run_dir(args)
    cases = payloads(cohort(args.cases), 64)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    proc = start_server(run_dir, port, args.workers, args.threads)
    rows = []
    try:
        wait_ready(url, proc)
        mem = PeakMemory(proc.pid)
        asyncio.run(load(url, cases, 1, args.warmup, args.seconds))  # first requests: warm-up
        for c in levels:
            row = asyncio.run(load(url, cases, c, args.requests, args.seconds))
            print(
                f"concurrency {c}: {row['ok']}/{row['requests']} ok, p50 {row['p50_ms']:.1f} ms, "
                f"p99 {row['p99_ms']:.1f} ms, {row['rps']:.1f} req/s, {row['errors']} errors",
                flush=True,
            )
            rows.append(row)
        peak = mem.stop()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    for r in rows:
        r["peak_rss_mb"] = peak
    shown = [
        {
            "concurrency": r["concurrency"],
            "requests": f"{r['ok']}/{r['requests']}",
            "p50": f"{r['p50_ms']:.1f}",
            "p99": f"{r['p99_ms']:.1f}",
            "rps": f"{r['rps']:.1f}",
            "errors": r["errors"],
        }
        for r in rows
    ]
    at8 = next((r for r in rows if r["concurrency"] == 8), None)
    at32 = next((r for r in rows if r["concurrency"] == 32), None)
    verdict = []
    if at8 is not None:
        verdict.append(
            f"p99 at concurrency 8: {at8['p99_ms']:.1f} ms (goal <= 50 ms: {'met' if at8['p99_ms'] <= 50 else 'not met'})"
        )
    if at32 is not None:
        verdict.append(
            f"failed requests at 32: {at32['errors']} (goal 0: {'met' if at32['errors'] == 0 else 'not met'})"
        )
    md = (
        f"`fusiondx serve` with {args.workers} worker(s) of the default 4-modality model "
        f"({args.epochs} epochs on {args.cases} cases); every request uploads a PNG, a WFDB "
        "pair, the report and 9 labs and gets probabilities, the conformal set and the exact "
        "modality Shapley values (no Grad-CAM). Latency in ms, client side on loopback (each "
        "case's multipart body encoded once by the generator); at most "
        f"{args.requests} requests or {args.seconds:g} s per level. Server peak memory "
        f"{peak:.0f} MiB (process tree).\n\n"
        + md_table(
            shown,
            [
                ("concurrency", "clients"),
                ("requests", "answered"),
                ("p50", "p50 ms"),
                ("p99", "p99 ms"),
                ("rps", "requests/s"),
                ("errors", "errors"),
            ],
        )
        + ("\n\n" + "; ".join(verdict) + "." if verdict else "")
    )
    save(
        "serve",
        {"run": str(run_dir), "workers": args.workers, "rows": rows, "peak_rss_mb": peak},
        md,
        TITLE,
    )
