"""A training or a study stopped at any moment (SIGKILL, SIGTERM, Ctrl-C) and run again ends
exactly where an uninterrupted one ends, and leaves no process behind."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from torch.utils.data import DataLoader
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.config import load_config
from fusiondx.data.dataset import EpochShuffle
from fusiondx.engine import task as task_module
from fusiondx.engine.resume import save_checkpoint
from fusiondx.study.runner import threads_per_job
from fusiondx.study.study import run_study

LINUX = Path("/proc/self/stat").is_file()

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"manifest": "manifest.csv", "patient_column": "patient_id"},
    "modalities": [
        {
            "name": "cxr",
            "kind": "image",
            "column": "image",
            "preprocessing": {"size": [16, 16]},
            "encoder": {"name": "cnn", "options": {"widths": [8, 16], "out_dim": 16}},
        },
        {
            "name": "labs",
            "kind": "tabular",
            "columns": ["age", "sex", "crp", "troponin", "smoker"],
            "categorical": ["sex", "smoker"],
        },
    ],
    "fusion": {"name": "concat", "dim": 16},
    "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
    # Every random stream a training draws from is in use: shuffling, dropout, modality dropout.
    "train": {
        "epochs": 12,
        "batch_size": 16,
        "progress": False,
        "early_stopping": None,
        "small_data": "off",
        "threads": 1,
        "modality_dropout": 0.3,
    },
}


def _config(cohort_dir: Path, out: Path, **train: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(TINY)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(out)
    cfg["train"].update(train)
    return cfg


def _write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    """The subprocess imports this very fusiondx (a worktree, not the installed copy)."""
    src = str(Path(fusiondx.__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
    }


_started: list[int] = []


@pytest.fixture(autouse=True)
def _no_leftovers() -> Any:
    """Whatever a failing test leaves running (its own process groups) ends with it."""
    yield
    while _started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(_started.pop(), signal.SIGKILL)


def _cli(*args: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        # Ctrl-C's default, even where the test runs with SIGINT ignored (a background job).
        proc = subprocess.Popen(
            [sys.executable, "-m", "fusiondx.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_env(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    _started.append(proc.pid)  # its own session and process group, which its workers join
    return proc


def _wait_for(
    what: str, ready: Any, proc: subprocess.Popen, log: Path, timeout: float = 300
) -> None:
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"the command ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            )
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"no {what} after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _saved_epoch(ckpt: Path) -> int:
    # Written whole or not at all (engine/resume.py), so reading it while training goes on is safe.
    return (
        int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
        if ckpt.is_file()
        else -1
    )


def _outcome(run: Path) -> dict[str, Any]:
    """What a run concluded; everything of metrics.json except its wall-clock time."""
    m = json.loads((run / "metrics.json").read_text())
    m.pop("train_seconds")
    return m


def _assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    assert _outcome(resumed) == _outcome(uninterrupted)
    # The curves too, each epoch once: the rows written before the kill and after the resume.
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed / "logs" / "metrics.csv"),
        pd.read_csv(uninterrupted / "logs" / "metrics.csv"),
    )
    a = torch.load(resumed / "model.pt", weights_only=True)
    b = torch.load(uninterrupted / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in b)


# ---------------------------------------------------------------------------------------------
# fit


def test_fit_killed_mid_epoch_resumes_to_the_uninterrupted_result(
    cohort_dir: Path, tmp_path: Path
) -> None:
    cfg = _config(cohort_dir, tmp_path / "killed")
    path = _write(cfg, tmp_path / "fit.yaml")
    run = tmp_path / "killed" / "tiny"
    last = run / "checkpoints" / "last.ckpt"
    proc = _cli("fit", str(path), "--quiet", log=tmp_path / "fit.log")
    _wait_for(
        "a checkpoint of epoch 1", lambda: _saved_epoch(last) >= 1, proc, tmp_path / "fit.log"
    )
    os.kill(proc.pid, signal.SIGKILL)  # lands in the middle of a later epoch, or of a save
    proc.wait()
    assert not (run / "metrics.json").exists(), "the run finished before it was killed"
    assert _saved_epoch(last) < cfg["train"]["epochs"] - 1

    runner = CliRunner()
    res = runner.invoke(app, ["fit", str(path), "--resume", "--quiet"])  # the same command, resumed
    assert res.exit_code == 0, res.output
    other = _write(_config(cohort_dir, tmp_path / "uninterrupted"), tmp_path / "other.yaml")
    res = runner.invoke(app, ["fit", str(other), "--quiet"])
    assert res.exit_code == 0, res.output
    _assert_same_run(run, tmp_path / "uninterrupted" / "tiny")


def test_sigterm_stops_a_fit_as_stopped_not_as_finished(cohort_dir: Path, tmp_path: Path) -> None:
    # Lightning answers SIGTERM with SystemExit(), exit status 0: a script saw a finished run.
    path = _write(_config(cohort_dir, tmp_path / "runs", epochs=500), tmp_path / "fit.yaml")
    run = tmp_path / "runs" / "tiny"
    log = tmp_path / "fit.log"
    proc = _cli("fit", str(path), "--quiet", log=log)
    _wait_for(
        "a checkpoint", lambda: _saved_epoch(run / "checkpoints" / "last.ckpt") >= 0, proc, log
    )
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 130, text[-3000:]
    assert "Stopped by SIGTERM" in text and "--resume" in text and "Traceback" not in text
    assert not (run / "metrics.json").exists()


class _Killed(RuntimeError):
    pass


def test_resume_restores_plateau_schedule_and_augmentation(
    cohort_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ReduceLROnPlateau (patience 2) lowers the rate after epoch 3 of this run; a resumed run
    # that missed the scheduler's step for epoch 2 lowered it a whole epoch later.
    cfg = _config(cohort_dir, tmp_path / "a", epochs=6, lr_decay="plateau", lr=0.01)
    cfg["modalities"][0]["preprocessing"]["augment"] = {"flip": True, "rotate": 10}
    fusiondx.fit(load_config(cfg))
    lr = pd.read_csv(tmp_path / "a" / "tiny" / "logs" / "metrics.csv")["lr"]
    assert lr.iloc[4] < lr.iloc[3], "the plateau schedule lowers the rate after the resume"

    original = task_module.FusionTask.on_train_epoch_start

    def killed_at_epoch_3(self: Any) -> None:
        if self.current_epoch == 3:
            raise _Killed
        original(self)

    monkeypatch.setattr(task_module.FusionTask, "on_train_epoch_start", killed_at_epoch_3)
    cfg["output_dir"] = str(tmp_path / "b")
    with pytest.raises(_Killed):
        fusiondx.fit(load_config(cfg))
    monkeypatch.setattr(task_module.FusionTask, "on_train_epoch_start", original)
    fusiondx.fit(load_config(cfg), resume=True)
    _assert_same_run(tmp_path / "b" / "tiny", tmp_path / "a" / "tiny")


@pytest.mark.parametrize("when", ["stopping epoch", "last epoch"])
def test_killed_after_the_final_checkpoint_trains_no_more(
    cohort_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    es = {"patience": 2} if when == "stopping epoch" else None
    cfg = _config(cohort_dir, tmp_path / "a", epochs=8, early_stopping=es, lr=0.01)
    done = fusiondx.fit(load_config(cfg)).metrics
    final = done["epochs_run"] - 1
    if es:
        assert done["epochs_run"] < 8, "early stopping stopped this run"

    def killed_after_saving(self: Any) -> None:  # runs after the epoch's checkpoint is written
        if self.current_epoch == final:
            raise _Killed

    monkeypatch.setattr(task_module.FusionTask, "on_train_epoch_end", killed_after_saving)
    cfg["output_dir"] = str(tmp_path / "b")
    with pytest.raises(_Killed):
        fusiondx.fit(load_config(cfg))
    monkeypatch.undo()
    started: list[int] = []
    monkeypatch.setattr(
        task_module.FusionTask,
        "on_train_epoch_start",
        lambda self: started.append(self.current_epoch),
    )
    fusiondx.fit(load_config(cfg), resume=True)
    assert started == []  # the patience counter was restored: no extra epoch
    _assert_same_run(tmp_path / "b" / "tiny", tmp_path / "a" / "tiny")


@pytest.mark.parametrize("workers", [0, 1])
def test_epoch_shuffle_gives_the_orders_of_a_seeded_dataloader(workers: int) -> None:
    # Same orders as before resuming was exact (results stay comparable), and any epoch on demand.
    n, seed = 37, 3
    loader = DataLoader(
        list(range(n)),
        batch_size=8,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    expected = [[int(i) for b in loader for i in b] for _ in range(4)]
    sampler = EpochShuffle(n, seed, persistent_workers=workers > 0)
    for epoch in (0, 1, 2, 3, 2, 3, 0):
        sampler.set_epoch(epoch)
        assert list(sampler) == expected[epoch]


def test_a_checkpoint_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    last = tmp_path / "last.ckpt"
    last.write_bytes(b"epoch 3")

    class DiesWhileSaving:
        def save_checkpoint(self, path: Path) -> None:
            Path(path).write_bytes(b"half of epo")
            raise _Killed

    with pytest.raises(_Killed):
        save_checkpoint(DiesWhileSaving(), last)  # type: ignore[arg-type]
    assert last.read_bytes() == b"epoch 3"


def test_an_unreadable_checkpoint_is_a_clear_error_and_a_study_starts_over(
    cohort_dir: Path, tmp_path: Path
) -> None:
    cfg = _config(cohort_dir, tmp_path / "runs", epochs=2)
    path = _write(cfg, tmp_path / "fit.yaml")
    run = tmp_path / "runs" / "tiny"
    fusiondx.fit(load_config(cfg))
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # e.g. a disk that filled up
    res = CliRunner().invoke(app, ["fit", str(path), "--resume", "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "not a loadable FusionDx checkpoint" in res.output and "without --resume" in res.output

    from fusiondx.study.runner import _train

    (run / "metrics.json").unlink()
    assert _train(load_config(cfg).model_dump(mode="json", exclude_unset=True)) is None
    assert (run / "metrics.json").is_file()


# ---------------------------------------------------------------------------------------------
# study


def _study_yaml(cohort_dir: Path, tmp_path: Path, epochs: int) -> Path:
    cfg = _config(cohort_dir, tmp_path / "runs", epochs=epochs)
    # The threads a job gets with --jobs 2, also when the same study runs with one job.
    cfg["train"]["threads"] = threads_per_job(2)
    cfg["study"] = {
        "strategies": ["concat"],
        "seeds": 1,
        "ablation": False,
        "robustness": False,
        "references": [],
        "n_boot": 200,
        "jobs": 2,
    }
    return _write(cfg, tmp_path / "study.yaml")


def _processes(session: int) -> dict[int, str]:
    """Live processes of a session (pid -> command line); zombies wait for a reaper only."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == session:
            out[int(d.name)] = cmd
    return out


def _workers(session: int) -> dict[int, str]:
    return {p: c for p, c in _processes(session).items() if "spawn_main" in c}


def _assert_all_end(session: int, within: float = 10.0) -> None:
    deadline = time.time() + within
    while _processes(session) and time.time() < deadline:
        time.sleep(0.1)
    assert not _processes(session), f"still running after {within} s: {_processes(session)}"


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads processes from /proc")
def test_study_killed_while_two_trainings_run_reruns_to_the_same_results(
    cohort_dir: Path, tmp_path: Path
) -> None:
    path = _study_yaml(cohort_dir, tmp_path, epochs=6)
    out = tmp_path / "killed"
    cmd = ("study", str(path), "--out", str(out), "--quiet", "--jobs", "2")
    proc = _cli(*cmd, log=tmp_path / "study.log")
    runs = out / "runs"

    def one_finished_and_one_midway() -> bool:
        finished = {p.parents[0] for p in runs.glob("*/*/metrics.json")}
        midway = [p for p in runs.glob("*/*/checkpoints/last.ckpt") if p.parents[1] not in finished]
        return bool(finished) and bool(midway)

    _wait_for(
        "one finished training beside one half-way",
        one_finished_and_one_midway,
        proc,
        tmp_path / "study.log",
    )
    assert len(_workers(proc.pid)) == 2
    os.kill(proc.pid, signal.SIGKILL)  # the study's process only: its workers are left to notice
    proc.wait()
    _assert_all_end(proc.pid)
    finished = {p: p.stat().st_mtime_ns for p in runs.glob("*/*/metrics.json")}
    assert 1 <= len(finished) < 3 and not (out / "results.json").exists()

    res = subprocess.run(
        [sys.executable, "-m", "fusiondx.cli", *cmd],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was trained again"

    ref = run_study(load_config(path), tmp_path / "uninterrupted", jobs=1, progress=False).results
    got = json.loads((out / "results.json").read_text())
    assert (got["winner"], got["best_single"]) == (ref["winner"], ref["best_single"])
    assert [e["id"] for e in got["entries"]] == [e["id"] for e in ref["entries"]]
    for a, b in zip(got["entries"], ref["entries"], strict=True):
        numbers = {k: v for k, v in a.items() if k not in ("train_seconds", "runs")}
        assert numbers == {k: v for k, v in b.items() if k not in ("train_seconds", "runs")}, a[
            "id"
        ]
    for run in runs.glob("*/*"):
        _assert_same_run(run, tmp_path / "uninterrupted" / "runs" / run.parent.name / run.name)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads processes from /proc")
@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
def test_a_stopped_study_leaves_no_worker_behind(
    cohort_dir: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    path = _study_yaml(cohort_dir, tmp_path, epochs=200)
    log = tmp_path / "study.log"
    proc = _cli("study", str(path), "--out", str(tmp_path / "out"), "--jobs", "2", log=log)
    _wait_for("two worker processes", lambda: len(_workers(proc.pid)) == 2, proc, log)
    os.kill(proc.pid, sig)  # the study's process only, as `kill` or a parent process would
    proc.wait(timeout=30)
    _assert_all_end(proc.pid)
    if sig != signal.SIGKILL:
        text = log.read_text()
        assert proc.returncode == 130 and "interrupted" in text and "Traceback" not in text, text[
            -3000:
        ]
