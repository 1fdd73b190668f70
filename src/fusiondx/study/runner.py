"""Run a study's trainings: skip the finished ones, run the rest in order or in parallel processes."""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fusiondx.config import load_config
from fusiondx.engine.trainer import cpu_budget
from fusiondx.study.plan import Entry, Replicate


@dataclass
class Job:
    entry: Entry
    rep: Replicate
    config: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return Path(self.config["output_dir"]) / self.config["name"]

    @property
    def title(self) -> str:
        return f"{self.entry.label} ({self.rep.name})"


def is_finished(job: Job) -> bool:
    """A run counts as done when it wrote metrics.json with the very config planned now.

    A changed config (other epochs, encoder, data) retrains instead of silently reusing.
    """
    return (job.run_dir / "metrics.json").is_file() and same_config(job.config)


def same_config(config: dict[str, Any]) -> bool:
    """Whether the run folder of ``config`` was started with exactly this config."""
    run_dir = Path(config["output_dir"]) / config["name"]
    # A run that changed small-data settings keeps the config it was given in requested.yaml.
    saved = next(
        (p for p in (run_dir / "requested.yaml", run_dir / "config.yaml") if p.is_file()), None
    )
    if saved is None:
        return False
    return yaml.safe_load(load_config(config).to_yaml()) == yaml.safe_load(saved.read_text())


def run_jobs(
    jobs: Sequence[Job], n_parallel: int, on_done: Callable[[Job, str | None], None]
) -> dict[str, str]:
    """Train every job not yet finished; return run_dir -> error text of the ones that failed.

    ``on_done(job, error)`` is called after each job (error None on success), for progress.
    A failing training does not stop the others: the study reports it and carries on.
    """
    failed: dict[str, str] = {}
    todo = [j for j in jobs if not is_finished(j)]
    for j in jobs:
        if j not in todo:
            on_done(j, None)
    if n_parallel <= 1 or len(todo) <= 1:
        for j in todo:
            err = _train(j.config)
            if err:
                failed[str(j.run_dir)] = err
            on_done(j, err)
        return failed
    # spawn, not fork: a forked child inherits torch's thread pools and can deadlock.
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=n_parallel,
        mp_context=ctx,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        with _sigterm_interrupts():
            futures = {pool.submit(_train, j.config): j for j in todo}
            for fut in as_completed(futures):
                j = futures[fut]
                err = fut.result()
                if err:
                    failed[str(j.run_dir)] = err
                on_done(j, err)
    except BaseException:
        # Ctrl-C, SIGTERM or an error here: the executor's own exit would wait for every queued
        # training to finish. The workers are killed instead; checkpoints are written whole, so a
        # rerun resumes what they were training.
        _kill_workers(pool)
        raise
    pool.shutdown(wait=True)
    return failed


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    for p in procs:
        p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=10)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (`kill`, a stopped container, a batch scheduler) stops a study like Ctrl-C does,
    so its workers are stopped too instead of training on for nobody."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _die_with_parent(parent: int) -> None:
    """Runs first in each worker: end it when the study's process is gone.

    A study killed with SIGKILL (or crashing) runs no cleanup, and its idle workers would wait
    for work forever, or its busy ones train on into folders that a rerun trains again.
    """
    if sys.platform.startswith("linux"):
        # The kernel sends SIGKILL when the parent dies: immediate, whatever the worker does.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    # Ctrl-C in a terminal reaches every process of the group; the study's process alone
    # handles it (and stops the workers), rather than each worker printing its own interruption.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:  # elsewhere, and as a fallback: notice being reparented
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="fusiondx-parent-watch", daemon=True).start()


def _train(config: dict[str, Any]) -> str | None:
    """One training in this process; the error message (not raised) when it fails."""
    import warnings

    warnings.filterwarnings("ignore")
    from fusiondx.engine.run import fit
    from fusiondx.errors import FusionDxError

    run_dir = Path(config["output_dir"]) / config["name"]
    # A study killed mid-training continues that training from its last finished epoch.
    resume = (run_dir / "checkpoints" / "last.ckpt").is_file() and same_config(config)
    try:
        # The study owns its run folders: an unfinished or outdated run in one is trained again.
        try:
            fit(load_config(config), resume=resume, overwrite=not resume, progress=False)
        except FusionDxError:
            if not resume:
                raise
            fit(
                load_config(config), resume=False, overwrite=True, progress=False
            )  # a stale checkpoint: start over
        return None
    except Exception as exc:  # noqa: BLE001  (reported per run; the study goes on)
        text = str(exc) if isinstance(exc, FusionDxError) else traceback.format_exc(limit=6)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(text)
        return text


def threads_per_job(n_parallel: int) -> int:
    return max(1, cpu_budget() // max(n_parallel, 1))


def read_metrics(job: Job) -> dict[str, Any] | None:
    path = job.run_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None
