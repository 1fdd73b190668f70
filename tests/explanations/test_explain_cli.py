"""`fusiondx explain`, `predict --explain` and `fusiondx.explain` end to end on a quick run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.errors import DataError, RunError

runner = CliRunner()


def _complete_case(run: Path) -> str:
    """A test case of the run with every modality present."""
    from fusiondx.config import load_config

    cfg = load_config(run / "config.yaml")
    df = pd.read_csv(cfg.data.manifest, dtype=str)
    test = set(pd.read_csv(run / "splits.csv", dtype=str).query("split == 'test'")["case_id"])
    full = df[df[["image", "ecg", "report", "crp"]].notna().all(axis=1) & df["case_id"].isin(test)]
    return str(full["case_id"].iloc[0])


def test_explain_writes_a_page_with_every_modality(quick_run: Path) -> None:
    case = _complete_case(quick_run)
    result = runner.invoke(app, ["explain", str(quick_run), "--case", case])
    assert result.exit_code == 0, result.output
    folder = quick_run / "explanations" / case
    page = (folder / "explanation.html").read_text()
    assert f"Wrote {folder / 'explanation.html'}" in result.output.replace("\n", "")
    for png in ("shapley.png", "cxr.png", "ecg.png", "labs.png"):
        assert (folder / png).stat().st_size > 3000, png
        assert f'src="{png}"' in page
    assert page.count('class="tok"') > 5  # the report, highlighted inline
    data = json.loads((folder / "explanation.json").read_text())
    assert data["case_id"] == case and data["explained_class"] == "disease"
    assert sum(data["shapley"].values()) == pytest.approx(
        data["probability"] - data["base"], abs=1e-6
    )
    assert data["truth"] in ("healthy", "disease")
    preds = pd.read_csv(quick_run / "predictions.csv", dtype={"case_id": str}).set_index("case_id")
    assert data["probability"] == pytest.approx(preds.loc[case, "diagnosis_prob_disease"], abs=1e-5)


def test_an_absent_modality_is_said_and_gets_zero(quick_run: Path, tmp_path: Path) -> None:
    from fusiondx.config import load_config

    df = pd.read_csv(load_config(quick_run / "config.yaml").data.manifest, dtype=str)
    case = str(df.loc[df["ecg"].isna() & df["image"].notna(), "case_id"].iloc[0])
    e = fusiondx.explain(quick_run, case, out=tmp_path / "x", target="healthy")
    assert e.explained == "healthy" and e.shapley["ecg"] == 0.0
    assert "Absent for this case" in (tmp_path / "x" / "explanation.html").read_text()
    assert not (tmp_path / "x" / "ecg.png").exists()


def test_unknown_case_id_names_the_manifest_and_close_ids(quick_run: Path) -> None:
    result = runner.invoke(app, ["explain", str(quick_run), "--case", "case_0003"])
    assert result.exit_code == 2
    said = result.output.replace("\n", "")
    assert "case_0003" in said and "manifest.csv" in said and "'case_00003'" in said
    with pytest.raises(DataError, match="is not in the manifest"):
        fusiondx.explain(quick_run, "nobody")


def test_unknown_class_and_task_are_refused(quick_run: Path) -> None:
    case = _complete_case(quick_run)
    with pytest.raises(RunError, match="no class 'sick'.*healthy, disease"):
        fusiondx.explain(quick_run, case, target="sick")
    with pytest.raises(RunError, match="no task 'grade'"):
        fusiondx.explain(quick_run, case, task="grade")


def test_predict_explain_writes_one_page_per_case(quick_run: Path, tmp_path: Path) -> None:
    from fusiondx.config import load_config

    manifest = load_config(quick_run / "config.yaml").data.manifest
    df = pd.read_csv(manifest, dtype=str).head(3)
    new = manifest.parent / "three_cases.csv"
    df.to_csv(new, index=False)
    out = tmp_path / "why"
    result = runner.invoke(
        app,
        [
            "predict",
            str(quick_run),
            "--data",
            str(new),
            "--out",
            str(tmp_path / "p.csv"),
            "--explain",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"Wrote 3 explanation pages", result.output)
    assert sorted(p.name for p in out.iterdir()) == sorted(df["case_id"])
    preds = pd.read_csv(tmp_path / "p.csv", dtype={"case_id": str}).set_index("case_id")
    for cid in df["case_id"]:
        data = json.loads((out / cid / "explanation.json").read_text())
        assert data["probability"] == pytest.approx(
            preds.loc[cid, "diagnosis_prob_disease"], abs=1e-5
        )


def test_explain_help_has_an_example() -> None:
    result = runner.invoke(app, ["explain", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(tmp_path), "--case", "case_00001"])
    assert result.exit_code == 2
    assert "has no config.yaml" in result.output.replace("\n", "")
