"""Where a search's trials are stored, and several worker processes sharing one search.

Optuna coordinates the workers through the storage alone: each worker asks it for a new trial
(a unique, increasing trial number), trains, and tells it the result; the sampler of every
worker reads the trials of all of them. Storages:

- ``sqlite:///path.db`` (the default with one worker): one process at a time is safe; several
  writers on one file can meet "database is locked".
- ``journal:///path`` or a path ending in ``.journal`` / ``.log``: Optuna's ``JournalStorage``
  over an append-only file with a file lock, its documented choice for several processes on one
  machine (the default with ``--workers`` above 1: ``<out>/search.journal``). Also works on a
  shared file system that supports the lock.
- ``postgresql://user:password@host/db`` (or ``mysql://``): many machines, each running
  ``fusiondx search ... --storage <url> --workers N``.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusiondx.config import Config
from fusiondx.errors import ConfigError, RunError

JOURNAL = "journal://"
JOURNAL_SUFFIXES = (".journal", ".log")


def default_storage(out_dir: Path, workers: int) -> str:
    """The storage of a search without ``--storage``: SQLite alone, a journal file for several."""
    if workers > 1:
        return f"{JOURNAL}{out_dir / 'search.journal'}"
    return f"sqlite:///{out_dir / 'search.db'}"


def journal_path(url: str) -> Path | None:
    """The journal file a storage string names (``journal:///path`` or ``*.journal``/``*.log``),
    else None (an RDB URL for Optuna)."""
    if url.startswith(JOURNAL):
        return Path(url[len(JOURNAL) :])
    if "://" not in url and url.endswith(JOURNAL_SUFFIXES):
        return Path(url)
    return None


def open_storage(url: str) -> Any:
    """The Optuna storage a URL names: a ``JournalStorage`` for a journal file, else the URL
    itself (Optuna opens RDB URLs)."""
    path = journal_path(url)
    if path is None:
        return url
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if path == Path() or path.is_dir():
        raise ConfigError(
            f"The search storage '{url}' names no file (a folder, or nothing).",
            fix="give journal:///path/to/search.journal (three slashes before an absolute path)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def split_trials(trials: int, workers: int) -> list[int]:
    """``trials`` shared out over ``workers`` (the first ones take one more when uneven), so
    that this command runs exactly ``trials`` trials in all."""
    return [trials // workers + (i < trials % workers) for i in range(workers)]


@dataclass(frozen=True)
class Worker:
    """What one worker process needs: the search, its share of the trials, its sampler seed."""

    cfg: Config
    out_dir: Path
    storage: str
    names: list[str]
    trials: int
    index: int
    threads: int | None
    quiet: bool = False


def worker_threads(cfg: Config, workers: int) -> int | None:
    """Torch threads of each worker: the machine's cores shared out, unless the config sets them."""
    if workers == 1 or cfg.train.threads:
        return cfg.train.threads
    return max(1, min(os.cpu_count() or 1, 8) // workers)


def run_workers(jobs: list[Worker], target: Any, local: Any) -> None:
    """``target(job)`` in a new process per job but the first, which ``local(job)`` runs in this
    process; returns when all have finished.

    Spawned rather than forked: a worker starts clean of this process's threads and torch state.
    """
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(job,), daemon=False) for job in jobs[1:]]
    for p in procs:
        p.start()
    try:
        if jobs:
            local(jobs[0])
    finally:
        for p in procs:
            p.join()
    failed = [(job.index, p.exitcode) for job, p in zip(jobs[1:], procs, strict=True) if p.exitcode]
    if failed:
        raise RunError(
            "Search worker(s) "
            + ", ".join(f"{i} (exit status {code})" for i, code in failed)
            + " stopped with an error; the trials they finished are kept in the storage.",
            fix="read the worker's error above, fix it, and run the same command again: it adds "
            "the missing trials to the same search",
        )
