"""The interoperability loop: FHIR in (`prepare fhir`), a tiny `fit` on the prepared cohort as
written, FHIR out (`predict --format fhir`): RiskAssessments that fhir.resources accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("fhir.resources")
pytest.importorskip("ucumvert")

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402

import fusiondx  # noqa: E402
from fusiondx.cli import app  # noqa: E402
from fusiondx.engine.rundir import RunDir  # noqa: E402
from fusiondx.errors import RunError  # noqa: E402


@pytest.fixture(scope="module")
def fhir_run(tmp_path_factory: pytest.TempPathFactory, one_thread: Any) -> tuple[Path, Path]:
    """A run fitted (1 epoch) on the config `prepare fhir` wrote, only made smaller and faster."""
    base = tmp_path_factory.mktemp("fhir_loop")
    example = fusiondx.interop_example(base / "example", n_cases=60, seed=4)
    prepared = base / "prepared"
    fusiondx.prepare(
        "fhir",
        example / "fhir",
        prepared,
        cohort=str(example / "cohort.yaml"),
        image_root=str(example / "files"),
    )
    raw = yaml.safe_load((prepared / "fhir.yaml").read_text())
    raw["train"] |= {"epochs": 1, "progress": False}
    raw["fusion"]["dim"] = 16
    for m in raw["modalities"]:
        if m["kind"] == "image":
            m["preprocessing"]["size"] = [16, 16]
        if m["kind"] == "text":
            m["preprocessing"] |= {"vocab_size": 100, "max_length": 16}
    raw["output_dir"] = str(base / "runs")
    cfg = prepared / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run = fusiondx.fit(cfg, progress=False)
    run_dir = Path(run.run_dir)
    return run_dir, prepared


def _validate(res: dict[str, Any]) -> None:
    get_fhir_model_class(res["resourceType"]).model_validate(res)


def test_bundle_of_risk_assessments_validates(fhir_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, prepared = fhir_run
    out = tmp_path / "risk.json"
    frame = fusiondx.predict(run_dir, prepared / "manifest.csv", out, format="fhir")
    bundle = json.loads(out.read_text())
    _validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    assert len(resources) == len(frame) and all(
        r["resourceType"] == "RiskAssessment" for r in resources
    )
    manifest = pd.read_csv(prepared / "manifest.csv", keep_default_na=False, na_values=[""])
    by_case = manifest.set_index("case_id")
    probs = frame.set_index("case_id")["label_prob_disease"]
    weights = RunDir(run_dir).weights_file
    for r in resources:
        cid = r["identifier"][0]["value"]
        assert r["subject"]["reference"] == f"Patient/{by_case.at[cid, 'patient_id']}"
        pred = r["prediction"][0]
        assert pred["outcome"]["text"] == "disease"
        assert pred["probabilityDecimal"] == pytest.approx(probs[cid], abs=1e-6)
        present = {b["display"].removesuffix(" present") for b in r["basis"]}
        expected = {"labs"} | {
            m
            for m, col in (("image", "image"), ("ecg", "ecg"), ("report", "report"))
            if isinstance(by_case.at[cid, col], str)
        }
        assert present == expected, cid
        ext = {e["url"].rsplit("/", 1)[1]: e["valueString"] for e in r["extension"]}
        assert ext["run-name"] == run_dir.name and ext["fusiondx-version"] == fusiondx.__version__
        assert (
            len(ext["model-sha256"]) == 64
            and r["method"]["coding"][0]["code"] == ext["model-sha256"]
        )
    assert weights.is_file()
    assert any(len(r["basis"]) < 4 for r in resources)  # some cases lack a modality


def test_ndjson_and_cli(fhir_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, prepared = fhir_run
    out = tmp_path / "risk.ndjson"
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(run_dir),
            "--data",
            str(prepared / "manifest.csv"),
            "--format",
            "fhir",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == len(pd.read_csv(prepared / "manifest.csv"))
    for line in lines:
        _validate(json.loads(line))
    # a second run replaces its own FHIR output; a user's other file is refused without --overwrite
    again = CliRunner().invoke(
        app,
        [
            "predict",
            str(run_dir),
            "--data",
            str(prepared / "manifest.csv"),
            "--format",
            "fhir",
            "--out",
            str(out),
        ],
    )
    assert again.exit_code == 0, again.output
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    refused = CliRunner().invoke(
        app,
        [
            "predict",
            str(run_dir),
            "--data",
            str(prepared / "manifest.csv"),
            "--format",
            "fhir",
            "--out",
            str(mine),
        ],
    )
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert mine.read_text() == '{"mine": true}'


def test_unknown_format_is_an_error(fhir_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, prepared = fhir_run
    with pytest.raises(RunError, match="--format csv or --format fhir"):
        fusiondx.predict(run_dir, prepared / "manifest.csv", tmp_path / "x.xml", format="xml")
