"""The run folder as a place on disk: can it be written, who is using it, what may be replaced.

- :func:`check_writable` finds out, before any data is read, whether a folder can be created
  and written, so a long preparation does not end in a ``PermissionError``.
- :func:`hold` takes a lock file in a run or study folder so that two processes never write
  one folder at once; a lock left by a process that died on this machine is taken over.
- :func:`open_run` is what ``fit`` does before training: writable folder, lock, and a refusal
  to replace an earlier run unless asked to; :func:`clear_run` then deletes only what FusionDx
  wrote there, keeping anything else.
- :func:`check_output` keeps ``predict`` and ``export`` from writing over a user's file.
- :func:`write_whole` writes a file whole or not at all, so a killed process never leaves a
  half-written one (only a temporary that :func:`clear_run` recognises as debris).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fusiondx.errors import ConfigError, RunError

LOCK = ".fusiondx.lock"
# Everything `fit` or `pretrain` (and a study around it, an export by default) writes in
# runs/<name>/.
RUN_FILES = (
    "config.yaml",
    "requested.yaml",
    "preprocessing.json",
    "splits.csv",
    "checkpoints",
    "model.pt",
    "metrics.json",
    "predictions.csv",
    "posthoc.json",
    "logs",
    "evaluations",
    "error.txt",
    "model.onnx",
    "MODEL_CARD.md",
    "model.int8.onnx",
    "int8.json",
    "distillation.json",
    "encoders.pt",
    "retrieval.json",
    LOCK,
)


def _say(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _unwritable(folder: Path, what: str, reason: str) -> RunError:
    return RunError(
        f"The {what} '{folder}' cannot be written ({reason}).",
        file=folder,
        fix="make that folder writable, or set output_dir in the config (or --out) to a "
        "folder you can write",
    )


def check_writable(folder: Path, what: str = "run folder") -> None:
    """Raise a :class:`RunError` unless ``folder`` exists or can be created, and files can be
    written in it. Creates nothing that stays: a probe folder is made and removed at once."""
    folder = Path(folder).absolute()
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise _unwritable(folder, what, f"'{base}' is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fusiondx-write-test-", dir=base))
    except OSError as exc:
        raise _unwritable(folder, what, f"{exc.strerror or exc} in '{base}'") from None


def make_folder(folder: Path, what: str = "run folder") -> bool:
    """Create ``folder`` (and its parents) as :func:`check_writable` promises; True if it was new."""
    folder = Path(folder)
    if folder.is_dir():
        check_writable(folder, what)
        return False
    check_writable(folder, what)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        if not folder.is_dir():
            raise _unwritable(folder, what, "a file of that name is in the way") from None
        return False
    except OSError as exc:
        raise _unwritable(folder, what, exc.strerror or str(exc)) from None
    return True


# --- one process per folder ---------------------------------------------------------------------


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # signal 0 is not a probe there; such a lock is never taken over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(info: dict[str, Any]) -> str:
    return (
        f"pid {info.get('pid')} on {info.get('host')}, running `{info.get('command')}` "
        f"since {info.get('since')}"
    )


@contextlib.contextmanager
def hold(folder: Path, what: str = "run folder") -> Iterator[None]:
    """Hold ``folder``'s lock file for the duration; another live process holding it is an error.

    The lock is released on return, on errors and on Ctrl-C. A lock whose process is gone (same
    host, pid no longer running) is taken over with a note; a lock written by another machine
    is never taken over, since its process cannot be checked from here.
    """
    path = Path(folder) / LOCK
    mine = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv) or "python",
        "since": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _take_over_if_stale(path, what)
            continue
        except OSError as exc:
            raise _unwritable(Path(folder), what, exc.strerror or str(exc)) from None
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:
        raise RunError(
            f"Could not take the lock of the {what} '{folder}': other processes keep taking it.",
            file=path,
            fix="run one FusionDx command per folder at a time",
        )
    try:
        yield
    finally:
        held = _read_lock(path)
        if held is not None and held.get("pid") == mine["pid"] and held.get("host") == mine["host"]:
            path.unlink(missing_ok=True)


def _take_over_if_stale(path: Path, what: str) -> None:
    """Remove the lock at ``path`` if its process is gone; raise a RunError naming it otherwise."""
    info = _read_lock(path)
    if info is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return  # released meanwhile
        if age < 10:  # being written this very moment by the process that created it
            time.sleep(0.5)
            info = _read_lock(path)
        if info is None:
            _say(f"the lock file '{path}' was unreadable; it is replaced")
            _remove_if_same(path, None)
            return
    same_host = info.get("host") == socket.gethostname()
    pid = info.get("pid")
    if same_host and isinstance(pid, int) and not _alive(pid):
        _say(f"took over the lock of {_describe(info)}, which is no longer running")
        _remove_if_same(path, info)
        return
    # A pid reused by an unrelated process, or a lock from another machine, needs a person.
    fix = (
        "wait until it finishes, or stop it; or use another run name or output folder; if no "
        f"FusionDx command runs as pid {pid} on {info.get('host')}, delete the lock file"
    )
    raise RunError(
        f"Another FusionDx process is using the {what} '{path.parent}': {_describe(info)}.",
        file=path,
        fix=fix,
    )


def _remove_if_same(path: Path, expected: dict[str, Any] | None) -> None:
    """Delete the lock only if it still is the stale one seen (two processes may take over at once)."""
    aside = path.with_name(f"{path.name}.{os.getpid()}.stale")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _read_lock(aside) != expected:
        with contextlib.suppress(OSError):
            os.link(aside, path)  # a live lock taken meanwhile: put it back (unless replaced again)
    aside.unlink(missing_ok=True)


def write_whole(path: Path, write: Callable[[Path], object], *, sync: bool = False) -> None:
    """``write(tmp)`` fills a temporary beside ``path``, which then replaces ``path`` in one step.

    ``sync`` puts the bytes on disk before the rename, so a power cut cannot leave an empty file
    either (worth it for checkpoints, not for the small files rewritten every epoch). A writer
    that writes nothing (a process that does not save, in multi-process training) changes nothing.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    if not tmp.is_file():
        return
    if sync:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)


# --- replacing an earlier run -------------------------------------------------------------------


def _debris(name: str) -> bool:
    """What a killed process can leave: write_whole's half-written files (.<name>.<pid>.tmp), a
    stale lock's copy, a write probe. Deleted with a run, but no run by itself."""
    m = re.fullmatch(r"\.(.+)\.\d+\.(tmp|stale)", name)
    return name.startswith(".fusiondx-write-test-") or (
        m is not None and bool({m.group(1), "." + m.group(1)} & set(RUN_FILES))
    )


def run_contents(run_dir: Path) -> tuple[list[str], list[str]]:
    """Names in ``run_dir`` of a run FusionDx wrote, and the names FusionDx did not write, sorted
    (the lock and debris of killed processes are in neither)."""
    if not run_dir.is_dir():
        return [], []
    names = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK and not _debris(p.name))
    return [n for n in names if n in RUN_FILES], [n for n in names if n not in RUN_FILES]


def check_new_run(run_dir: Path, *, overwrite: bool) -> None:
    """Refuse to start a run in a folder that already holds one, unless ``overwrite``."""
    ours, others = run_contents(run_dir)
    if overwrite or not (ours or others):
        return
    if ours:
        what = (
            f"The run folder '{run_dir}' already holds a run ({', '.join(ours[:6])}"
            f"{', ...' if len(ours) > 6 else ''}); a new `fit` or `pretrain` would replace it."
        )
    else:
        what = (
            f"The run folder '{run_dir}' already exists and holds files FusionDx did not write "
            f"({', '.join(others[:6])}{', ...' if len(others) > 6 else ''})."
        )
    fix = (
        "give the run another name (or output_dir) in the config, or rerun with --overwrite, which "
        "replaces only the files FusionDx writes there and keeps every other file"
    )
    if "checkpoints" in ours and "metrics.json" not in ours:
        fix = "to continue that unfinished run, rerun with --resume; or " + fix
    raise RunError(what, file=run_dir, fix=fix)


def clear_run(run_dir: Path) -> list[str]:
    """Delete what FusionDx wrote in ``run_dir`` (not the lock held now); return the names kept."""
    ours, others = run_contents(run_dir)
    ours += [p.name for p in run_dir.iterdir() if _debris(p.name)] if run_dir.is_dir() else []
    for name in ours:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    if others:
        _say(
            f"replaced the earlier run in '{run_dir}' and kept {len(others)} file(s) FusionDx did not "
            f"write there: {', '.join(others[:10])}{', ...' if len(others) > 10 else ''}"
        )
    return others


@contextlib.contextmanager
def open_run(run_dir: Path, *, resume: bool, overwrite: bool) -> Iterator[None]:
    """Before ``fit`` reads any data: the run folder is writable, locked for this process, and
    holds no earlier run unless resuming or ``overwrite``. A folder made here and left empty by a
    failed start is removed again."""
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite cannot be combined.",
            fix="--resume continues the run in the folder; --overwrite starts it again from scratch",
        )
    created = make_folder(run_dir)
    try:
        with hold(run_dir):
            if not resume:
                check_new_run(run_dir, overwrite=overwrite)
            yield
    finally:
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty: a run that failed before writing anything


@contextlib.contextmanager
def open_study(out_dir: Path) -> Iterator[None]:
    """A study (or search) folder: writable and locked for this process while it runs."""
    make_folder(out_dir, "study folder")
    with hold(out_dir, "study folder"):
        yield


# --- outputs next to the user's files -----------------------------------------------------------


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(
    out: Path,
    *,
    inputs: Iterable[Path],
    run_dir: Path,
    keep: str,
    overwrite: bool,
    ours: bool,
    option: str = "--out",
) -> None:
    """Refuse an output path that would replace a user's file.

    Always refused: an input (``inputs``: the manifests read), a folder, or a file of the run
    folder other than ``keep`` (the one output FusionDx may write there). An existing file that
    FusionDx did not write (``ours`` False) is refused unless ``overwrite``.
    """
    out = Path(out)
    for src in inputs:
        if _same(out, Path(src)):
            raise RunError(
                f"{option} '{out}' is the manifest '{src}' this command reads; writing there "
                "would destroy it.",
                file=out,
                fix=f"choose another file for {option}",
            )
    if out.is_dir():
        raise RunError(
            f"{option} '{out}' is a folder.", file=out, fix=f"give {option} a file name inside it"
        )
    if _same(out.parent, run_dir) and out.name in RUN_FILES and out.name != keep:
        raise RunError(
            f"{option} '{out}' is the run's own {out.name}; writing there would break the run.",
            file=out,
            fix=f"choose a file outside the run folder for {option}",
        )
    if out.exists() and not ours and not overwrite:
        raise RunError(
            f"{option} '{out}' already exists and was not written by FusionDx, so it is left alone.",
            file=out,
            fix=f"choose another file for {option}, or add --overwrite to replace it",
        )
    try:
        check_writable(out.parent, "output folder")
    except RunError as err:
        raise err.at(file=out) from None


def csv_columns(path: Path) -> list[str] | None:
    """The header of a CSV file, or None if it cannot be read as one."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f))
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error):
        return None
