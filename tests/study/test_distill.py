"""fusiondx distill: the soft labels are really used, the table is written, bad students refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import Config
from fusiondx.engine.distill_task import distillation_loss
from fusiondx.engine.run import fit
from fusiondx.errors import ConfigError
from fusiondx.study.distill import distill


@pytest.fixture(scope="module")
def teacher(quick_base: dict[str, Any], cohort_dir: Path, tmp_path_factory: Any) -> Path:
    """A four-modality fused run: the teacher."""
    raw = copy.deepcopy(quick_base)
    raw["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    raw["output_dir"] = str(tmp_path_factory.mktemp("teacher") / "runs")
    raw["train"]["epochs"] = 3
    return Path(fit(Config.model_validate(raw)).run_dir)


@pytest.fixture
def student(quick_base: dict[str, Any], cohort_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """A lighter student: two of the teacher's four modalities, same manifest, split and task."""
    raw = copy.deepcopy(quick_base)
    raw["name"] = "student"
    raw["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    raw["output_dir"] = str(tmp_path / "students")
    raw["train"]["epochs"] = 3
    raw["modalities"] = [m for m in raw["modalities"] if m["name"] in ("report", "labs")]
    return raw


def _test_probs(run_dir: Path) -> pd.Series:
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"case_id": str})
    frame = frame[frame["split"] == "test"].set_index("case_id").sort_index()
    return frame["diagnosis_prob_raw_disease"]


def test_distillation_loss_is_the_tempered_kl_and_zero_at_the_teacher() -> None:
    z = torch.tensor([[0.3], [-1.2], [2.0]])
    assert distillation_loss(z, z, "binary", 2.0).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.zeros(3, 1)
    p = torch.sigmoid(z / 2)
    kl = (p * torch.log(p / 0.5) + (1 - p) * torch.log((1 - p) / 0.5)).mean() * 4
    assert distillation_loss(student, z, "binary", 2.0).item() == pytest.approx(kl.item(), rel=1e-5)
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    q = torch.softmax(logits / 3, -1)
    expected = (q * torch.log(q / (1 / 3))).sum() * 9
    got = distillation_loss(torch.zeros(1, 3), logits, "multiclass", 3.0)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_teachers_soft_labels_pull_the_student_towards_the_teacher(
    teacher: Path, student: dict[str, Any], tmp_path: Path
) -> None:
    # alpha 0: the soft term is off, so the "distilled" run is the student alone, to the bit.
    zero = distill(teacher, student, alpha=0.0, out=tmp_path / "a0", n_boot=50, progress=False)
    np.testing.assert_allclose(_test_probs(zero.distilled), _test_probs(zero.alone), atol=1e-6)
    # alpha 1: the student learns the teacher's answers only, and ends closer to them.
    one = distill(
        teacher,
        student,
        alpha=1.0,
        out=tmp_path / "a1",
        alone=zero.alone,
        n_boot=50,
        progress=False,
    )
    rows = one.results["tasks"]["diagnosis"]["models"]
    teacher_p = _test_probs(teacher)
    gap = {
        k: float((_test_probs(getattr(one, k)) - teacher_p).abs().mean())
        for k in ("distilled", "alone")
    }
    assert gap["distilled"] < gap["alone"]
    assert rows["distilled"]["teacher_gap"] == pytest.approx(gap["distilled"])
    assert rows["teacher"]["teacher_gap"] == 0.0
    metrics = json.loads((one.distilled / "metrics.json").read_text())
    assert metrics["distillation"]["alpha"] == 1.0 and metrics["distillation"]["temperature"] == 2.0


def test_the_table_compares_the_three_models_with_cis(
    teacher: Path, student: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(student))
    result = CliRunner().invoke(
        app,
        [
            "distill",
            str(teacher),
            "--student",
            str(path),
            "--out",
            str(tmp_path / "d"),
            "--n-boot",
            "100",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "d"
    assert {"distill.md", "distill.json", "distill.png", "distilled", "alone"} <= {
        p.name for p in out.iterdir()
    }
    results = json.loads((out / "distill.json").read_text())
    task = results["tasks"]["diagnosis"]
    assert set(task["models"]) == {"teacher", "distilled", "alone"}
    for row in task["models"].values():
        s = row["auroc"]
        assert s["low"] <= s["mean"] <= s["high"]
    # The teacher's AUROC is the one its own predictions give on the shared test cases.
    from sklearn.metrics import roc_auc_score

    frame = pd.read_csv(teacher / "predictions.csv").query("split == 'test'")
    y = (frame["diagnosis_true"] == "disease").to_numpy()
    assert task["models"]["teacher"]["auroc"]["mean"] == pytest.approx(
        roc_auc_score(y, frame["diagnosis_prob_raw_disease"]), abs=1e-6
    )
    assert results["models"]["alone"]["modalities"] == ["report", "labs"]
    md = (out / "distill.md").read_text()
    assert "| distilled student | report, labs |" in md and "distilled - alone: AUROC" in md
    said = "".join(result.output.split())
    assert "distill.md" in said and "distilled-alone" in said


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s, tmp: s["data"].update(manifest=str(tmp / "other.csv")), "reads the manifest"),
        (lambda s, tmp: s["tasks"][0].update(name="diagnosys"), "Did you mean 'diagnosis'"),
        (lambda s, tmp: s.update(seed=5), "splits the cases differently"),
        (
            lambda s, tmp: s["tasks"][0].update(head="regression", label="age", classes=None),
            "classification tasks",
        ),
    ],
    ids=["other-manifest", "unknown-task", "other-split", "regression"],
)
def test_a_student_that_does_not_match_the_teacher_is_refused_before_training(
    teacher: Path, student: dict[str, Any], tmp_path: Path, change: Any, match: str
) -> None:
    manifest = Path(student["data"]["manifest"])
    (tmp_path / "other.csv").write_text(manifest.read_text())
    change(student, tmp_path)
    with pytest.raises(ConfigError, match=match) as err:
        distill(teacher, student, out=tmp_path / "d", progress=False)
    assert "Fix:" in str(err.value)
    assert not (tmp_path / "d").exists()


def test_distill_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["distill", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_fit_resume_of_a_distilled_run_continues_with_its_teacher(
    teacher: Path, student: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from fusiondx.config import load_config
    from fusiondx.engine import distill_task as dt
    from fusiondx.engine.rundir import RunDir
    from fusiondx.errors import RunError

    # A copy of the teacher: this test removes and changes its weights.
    own = tmp_path / "teacher"
    shutil.copytree(teacher, own)
    soft = dt.teacher_logits(RunDir(own), ["diagnosis"], 1.0, 2.0, progress=False)
    student["train"]["epochs"] = 3
    student["train"]["early_stopping"] = None
    whole = dict(student, output_dir=str(tmp_path / "whole"))
    full = Path(fit(Config.model_validate(whole), soft_targets=soft).run_dir)

    class _Killed(RuntimeError):
        pass

    original = dt.DistillTask.on_train_epoch_start

    def killed_at_epoch_1(self: Any) -> None:
        if self.current_epoch == 1:
            raise _Killed
        original(self)

    monkeypatch.setattr(dt.DistillTask, "on_train_epoch_start", killed_at_epoch_1)
    cut = dict(student, output_dir=str(tmp_path / "cut"))
    with pytest.raises(_Killed):
        fit(Config.model_validate(cut), soft_targets=soft)
    monkeypatch.undo()
    run = tmp_path / "cut" / "student"
    record = json.loads((run / "distillation.json").read_text())
    assert record["teacher"] == str(own.resolve()) and record["alpha"] == 1.0

    # The teacher gone, or retrained since: refused, naming the teacher and the fix.
    (own / "model.pt").rename(own / "model.bak")
    with pytest.raises(RunError, match="no trained model") as err:
        fit(load_config(run / "config.yaml"), resume=True)
    assert str(own) in str(err.value) and "--overwrite" in str(err.value)
    (own / "model.pt").write_bytes(b"retrained")
    with pytest.raises(RunError, match="retrained since"):
        fit(load_config(run / "config.yaml"), resume=True)
    (own / "model.bak").replace(own / "model.pt")

    # `fit --resume` of the run's own config.yaml (no soft labels given) continues with the
    # teacher: the same model as the uninterrupted distillation, to the bit.
    started: list[int] = []
    monkeypatch.setattr(
        dt.DistillTask, "on_train_epoch_start", lambda self: started.append(self.current_epoch)
    )
    resumed = fit(load_config(run / "config.yaml"), resume=True)
    assert started == [1, 2]
    assert resumed.metrics["distillation"]["teacher"] == str(own.resolve())
    np.testing.assert_allclose(_test_probs(run), _test_probs(full), atol=1e-6)
