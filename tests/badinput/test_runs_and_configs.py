"""Bad run folders, checkpoints, outputs and configs: each stops with one paragraph from the CLI.

One tiny run is trained for the whole module (by `fit --overwrite` over an earlier run with a
file of the user's in its folder, which is itself a case to check); every other test copies
that run folder or refuses before any training.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.engine import runfolder

runner = CliRunner()


def _quick() -> dict[str, Any]:
    # The top-level conftest by path: the name `conftest` is shared by several test folders.
    spec = importlib.util.spec_from_file_location(
        "_top_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    top = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top)
    return copy.deepcopy(top.QUICK)


def _sha(*paths: Path) -> dict[str, str]:
    """sha256 of every file at or under ``paths`` (the user's inputs, a run folder)."""
    out = {}
    for p in paths:
        for f in sorted([p] if p.is_file() else p.rglob("*")):
            if f.is_file():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _refused(args: list[str], *needles: str) -> str:
    """Run the CLI; it must exit 2 with one paragraph naming ``needles`` and a fix."""
    result = runner.invoke(app, args)
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out and "weights_only" not in out, out
    assert "Fix:" in out, out
    flat = " ".join(out.split())
    for n in needles:
        assert " ".join(n.split()) in flat, f"{n!r} not in: {out}"
    return flat


def _write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(cohort_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The module's one training: `fit --overwrite` over an earlier (fake) run holding a user file."""
    base = tmp_path_factory.mktemp("runs_and_configs")
    cfg = _quick()
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(base / "runs")
    cfg["train"]["epochs"] = 1
    config = _write(cfg, base / "quick.yaml")
    run = base / "runs" / "quick"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"old")
    (run / "metrics.json").write_text("{}")
    (run / "error.txt").write_text("an old failure")
    (run / "notes.txt").write_text("my notes on this run")
    kept = _sha(run / "notes.txt")
    result = runner.invoke(app, ["fit", str(config), "--quiet", "--overwrite"])
    assert result.exit_code == 0, result.output
    return {"cfg": cfg, "config": config, "run": run, "base": base, "result": result, "kept": kept}


def _copy_run(trained: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trained run (its own runs/quick) and a config that names it."""
    run = tmp_path / "runs" / "quick"
    shutil.copytree(trained["run"], run)
    cfg = copy.deepcopy(trained["cfg"])
    cfg["output_dir"] = str(tmp_path / "runs")
    return run, _write(cfg, tmp_path / "quick.yaml")


# --- 1. checkpoints that are not FusionDx checkpoints ------------------------------------------


class _Evil:
    """A pickle that runs a shell command when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _damage(path: Path, how: str, marker: Path) -> None:
    good = path.read_bytes()
    if how == "malicious":
        buf = io.BytesIO()
        torch.save({"w": _Evil(marker)}, buf)  # a real torch zip whose pickle calls os.system
        path.write_bytes(buf.getvalue())
    elif how == "raw_pickle":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    elif how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(os.urandom(4096))


@pytest.mark.parametrize(
    ("how", "command"),
    [
        ("malicious", "evaluate"),
        ("raw_pickle", "predict"),
        ("truncated", "export"),
        ("random", "evaluate"),
    ],
)
def test_a_model_pt_that_is_not_a_fusiondx_checkpoint_is_refused(
    trained: dict[str, Any], tmp_path: Path, how: str, command: str
) -> None:
    run, _ = _copy_run(trained, tmp_path)
    marker = tmp_path / "pwned"
    _damage(run / "model.pt", how, marker)
    manifest = Path(trained["cfg"]["data"]["manifest"])
    before = _sha(run, manifest)
    args = {
        "evaluate": ["evaluate", str(run)],
        "export": ["export", str(run), "--out", str(tmp_path / "m.onnx")],
        "predict": ["predict", str(run), "--data", str(manifest), "--out", str(tmp_path / "p.csv")],
    }[command]
    _refused(
        args,
        "model.pt",
        "not a loadable FusionDx checkpoint",
        "damaged, truncated, or was not written by FusionDx",
        "retrain with `fusiondx fit --overwrite` (without --resume), or restore the run folder from a copy",
    )
    assert not marker.exists(), "the pickle's code ran"
    assert _sha(run, manifest) == before
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.onnx").exists()


def test_a_damaged_preprocessing_json_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    run, _ = _copy_run(trained, tmp_path)
    state = run / "preprocessing.json"
    state.write_bytes(state.read_bytes()[:100])
    before = _sha(run)
    _refused(
        ["evaluate", str(run)],
        "preprocessing.json is not valid JSON",
        "restore the run folder from a copy",
    )
    assert _sha(run) == before


def test_a_damaged_last_ckpt_is_refused_by_fit_resume(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    run, config = _copy_run(trained, tmp_path)
    marker = tmp_path / "pwned"
    _damage(run / "checkpoints" / "last.ckpt", "malicious", marker)
    before = _sha(run, config)
    _refused(
        ["fit", str(config), "--resume", "--quiet"],
        "last.ckpt",
        "not a loadable FusionDx checkpoint",
        "restore the run folder from a copy",
    )
    assert not marker.exists()
    assert _sha(run, config) == before


def test_a_model_pt_of_another_model_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    run, _ = _copy_run(trained, tmp_path)
    state = torch.load(run / "model.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.ndim == 2)
    state[name] = torch.zeros(state[name].shape[0] + 3, state[name].shape[1])
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, run / "model.pt")
    before = _sha(run)
    _refused(
        ["evaluate", str(run)],
        "model.pt",
        "do not fit the model the run's config.yaml describes",
        name,
        "extra.weight",
        "restore the run folder from a copy",
    )
    assert _sha(run) == before


# --- 2. an output folder that cannot be written ----------------------------------------------


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_an_unwritable_output_folder_is_refused_before_any_data_is_read(
    trained: dict[str, Any], tmp_path: Path, where: str
) -> None:
    cfg = copy.deepcopy(trained["cfg"])
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file of the user's")
    cfg["output_dir"] = str(blocker / "runs") if where == "under_a_file" else "/proc/fusiondx_runs"
    config = _write(cfg, tmp_path / "quick.yaml")
    before = _sha(blocker, config, Path(cfg["data"]["manifest"]))
    folder = str(Path(cfg["output_dir"]) / "quick")
    for command in (["validate", str(config)], ["fit", str(config), "--quiet"]):
        flat = _refused(
            command, f"run folder '{folder}' cannot be written", "set output_dir in the config"
        )
        assert "cases per split" not in flat and "OK" not in flat
    _refused(["study", str(config), "--quiet"], "study folder", "cannot be written")
    assert _sha(blocker, config, Path(cfg["data"]["manifest"])) == before
    assert not Path("/proc/fusiondx_runs").exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="chmod does not stop root"
)
def test_a_read_only_output_folder_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    cfg = copy.deepcopy(trained["cfg"])
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        cfg["output_dir"] = str(ro)
        config = _write(cfg, tmp_path / "quick.yaml")
        _refused(["fit", str(config), "--quiet"], f"run folder '{ro / 'quick'}' cannot be written")
    finally:
        ro.chmod(0o700)


# --- 3. a second fit of the same name ---------------------------------------------------------


def test_fit_refuses_to_replace_an_earlier_run(trained: dict[str, Any], tmp_path: Path) -> None:
    run, config = _copy_run(trained, tmp_path)
    (run / "my_analysis.ipynb").write_text("{}")
    before = _sha(run, config)
    ok = runner.invoke(app, ["validate", str(config)])  # validate says so before anyone trains
    assert ok.exit_code == 0 and "already holds a run" in " ".join(ok.output.split()), ok.output
    _refused(
        ["fit", str(config), "--quiet"],
        f"run folder '{run}' already holds a run",
        "metrics.json",
        "another name",
        "--overwrite",
        "keeps every other file",
    )
    assert _sha(run, config) == before


def test_overwrite_replaces_only_what_fusiondx_wrote(trained: dict[str, Any]) -> None:
    run, result = trained["run"], trained["result"]
    flat = " ".join(result.output.split())
    assert "kept 1 file(s) FusionDx did not write there: notes.txt" in flat
    assert _sha(run / "notes.txt") == trained["kept"]
    assert not (run / "error.txt").exists()  # an earlier run's failure is not this run's
    assert json.loads((run / "metrics.json").read_text())["name"] == "quick"
    assert not (run / runfolder.LOCK).exists()  # released after the run


def test_a_study_retrains_its_own_unfinished_run(
    trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusiondx.engine import run as run_module
    from fusiondx.study import runner as study_runner

    run, _ = _copy_run(trained, tmp_path)
    (run / "metrics.json").unlink()  # killed before the end: the study trains it again
    calls: list[Path] = []
    monkeypatch.setattr(
        run_module, "_fit", lambda cfg, **kw: calls.append(cfg.run_dir)
    )  # not the training
    config = copy.deepcopy(trained["cfg"]) | {"output_dir": str(tmp_path / "runs")}
    assert study_runner._train(config) is None
    assert calls == [run]


def test_resume_and_overwrite_cannot_be_combined(trained: dict[str, Any], tmp_path: Path) -> None:
    run, config = _copy_run(trained, tmp_path)
    before = _sha(run)
    _refused(
        ["fit", str(config), "--resume", "--overwrite"],
        "--resume and --overwrite cannot be combined",
    )
    assert _sha(run) == before


# --- two processes on one folder ----------------------------------------------------------------


def _lock(folder: Path, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / runfolder.LOCK
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "host": socket.gethostname(),
                "command": "fusiondx fit other.yaml",
                "since": "2025-01-01T10:00:00",
            }
        )
    )
    return path


def test_a_run_or_study_folder_held_by_a_live_process_is_refused(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    run, config = _copy_run(trained, tmp_path)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = _lock(run, holder.pid)
        before = _sha(run, config)
        _refused(
            ["fit", str(config), "--quiet", "--overwrite"],
            "Another FusionDx process is using the run folder",
            f"pid {holder.pid}",
            "since 2025-01-01T10:00:00",
            "fusiondx fit other.yaml",
            "another run name",
        )
        assert _sha(run, config) == before and lock.is_file()
        study = tmp_path / "study"
        _lock(study, holder.pid)
        _refused(
            ["study", str(config), "--out", str(study), "--quiet"],
            "Another FusionDx process is using the study folder",
            f"pid {holder.pid}",
        )
        assert sorted(p.name for p in study.iterdir()) == [runfolder.LOCK]
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    run, config = _copy_run(trained, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = _lock(run, dead.pid)
    # The lock is taken over (with a note), then the earlier run in the folder is refused.
    flat = _refused(["fit", str(config), "--quiet"], "already holds a run")
    assert f"took over the lock of pid {dead.pid}" in flat and "no longer running" in flat
    assert not lock.exists()  # released again on the way out


def test_the_lock_is_released_on_errors_and_interrupts(tmp_path: Path) -> None:
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), runfolder.hold(tmp_path):
            assert (tmp_path / runfolder.LOCK).is_file()
            raise exc
        assert not (tmp_path / runfolder.LOCK).exists()


# --- 6. a validation split with one class -------------------------------------------------------


def test_a_one_class_validation_split_column_is_refused_by_validate_and_fit(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    src = Path(trained["cfg"]["data"]["manifest"])
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    split = pd.Series("train", index=df.index)
    split[df.index[df["label"] == "healthy"][:20]] = "val"
    split[df.index[-30:]] = "test"
    df["split"] = split
    manifest = tmp_path / "with_split.csv"
    df.to_csv(manifest, index=False)
    cfg = copy.deepcopy(trained["cfg"])
    cfg["data"] = {"manifest": str(manifest), "root": str(src.parent), "split": {"column": "split"}}
    cfg["output_dir"] = str(tmp_path / "runs")
    config = _write(cfg, tmp_path / "quick.yaml")
    before = _sha(manifest, config)
    for command in (["validate", str(config)], ["fit", str(config), "--quiet"]):
        _refused(
            command,
            "validation split of task 'diagnosis' holds a single class",
            "column 'split'",
            "train: 'healthy'",
            "val: 'healthy' 20, 'disease' 0",
            "test: 'healthy'",
            "validation AUROC",
            "monitor: loss",
        )
    assert _sha(manifest, config) == before
    assert not (tmp_path / "runs" / "quick").exists()  # nothing left behind by the refused fit


# --- 7 and 11. configs that say something twice --------------------------------------------------


def test_repeated_class_names_are_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    cfg = copy.deepcopy(trained["cfg"])
    cfg["tasks"][0]["classes"] = ["healthy", "disease", "disease"]
    config = _write(cfg, tmp_path / "dup_classes.yaml")
    before = _sha(config)
    for command in ("validate", "fit"):
        _refused(
            [command, str(config)], "tasks.0.classes", "repeated: 'disease'", f"file '{config}'"
        )
    assert _sha(config) == before


def test_a_top_level_key_given_twice_is_refused_with_both_lines(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    text = yaml.safe_dump(trained["cfg"], sort_keys=False)
    lines = text.splitlines()
    text += "train:\n  epochs: 50\n"
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("train:"))
    config = tmp_path / "twice.yaml"
    config.write_text(text)
    before = _sha(config)
    for command in ("validate", "fit"):
        _refused(
            [command, str(config)],
            f"sets 'train' twice (line {first} and line {len(lines) + 1})",
            f"file '{config}'",
            "merge the two 'train:' entries into one",
        )
    assert _sha(config) == before


def test_a_nested_key_given_twice_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "nested.yaml"
    config.write_text("name: x\ndata:\n  manifest: m.csv\n  id_column: a\n  id_column: b\n")
    before = _sha(config)
    _refused(
        ["validate", str(config)], "sets 'id_column' twice (line 4 and line 5)", f"file '{config}'"
    )
    assert _sha(config) == before


# --- 14. outputs that would replace a user's file ------------------------------------------------


def _small_manifest(trained: dict[str, Any], tmp_path: Path) -> Path:
    src = Path(trained["cfg"]["data"]["manifest"])
    df = pd.read_csv(src, dtype=str, keep_default_na=False).head(8)
    path = src.parent / f"m_{tmp_path.name}.csv"  # beside the cohort, so its relative paths resolve
    df.to_csv(path, index=False)
    return path


def test_predict_never_writes_over_its_input_manifest(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    manifest = _small_manifest(trained, tmp_path)
    before = _sha(manifest)
    for extra in ([], ["--overwrite"]):
        _refused(
            [
                "predict",
                str(trained["run"]),
                "--data",
                str(manifest),
                "--out",
                str(manifest),
                *extra,
            ],
            f"--out '{manifest}' is the manifest",
            "choose another file for --out",
        )
    alias = (
        manifest.parent / ".." / manifest.parent.name / manifest.name
    )  # the same file, spelled otherwise
    _refused(
        ["predict", str(trained["run"]), "--data", str(manifest), "--out", str(alias)],
        "is the manifest",
    )
    assert _sha(manifest) == before


def test_predict_keeps_a_user_file_at_out_unless_overwrite(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    manifest = _small_manifest(trained, tmp_path)
    mine = tmp_path / "results.csv"
    mine.write_text("patient,score\np1,3\n")
    before = _sha(mine, manifest, trained["run"])
    args = ["predict", str(trained["run"]), "--data", str(manifest), "--out", str(mine)]
    _refused(args, f"--out '{mine}' already exists and was not written by FusionDx", "--overwrite")
    _refused(
        [
            "predict",
            str(trained["run"]),
            "--data",
            str(manifest),
            "--out",
            str(trained["run"] / "predictions.csv"),
        ],
        "the run's own predictions.csv",
    )
    assert _sha(mine, manifest, trained["run"]) == before
    ok = runner.invoke(app, [*args, "--overwrite"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, args)  # an earlier predictions file is replaced without asking
    assert again.exit_code == 0, again.output
    assert pd.read_csv(mine).columns[0] == "case_id"


def test_export_keeps_a_user_file_and_the_run_files(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    mine = tmp_path / "model.onnx"
    mine.write_bytes(b"my own model")
    run = trained["run"]
    before = _sha(mine, run)
    _refused(
        ["export", str(run), "--out", str(mine)],
        "already exists and was not written by FusionDx",
        "--overwrite",
    )
    _refused(
        ["export", str(run), "--out", str(run / "model.pt"), "--overwrite"],
        "the run's own model.pt",
    )
    _refused(
        ["export", str(run), "--out", trained["cfg"]["data"]["manifest"], "--overwrite"],
        "is the manifest",
    )
    assert _sha(mine, run) == before
