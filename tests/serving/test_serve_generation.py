"""A run with a text-generating head served: ONNX Runtime answers the diagnosis, the PyTorch
model writes the findings (no graph holds token-by-token decoding), and both equal
`fusiondx.predict`; a run that only writes text is served by PyTorch alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import fusiondx  # noqa: E402
from fusiondx.cli import app  # noqa: E402
from fusiondx.serving.app import create_app  # noqa: E402


def _library(run: Path, cases: pd.DataFrame, root: Path, folder: Path) -> pd.DataFrame:
    cases.to_csv(folder / "cases.csv", index=False)
    out = fusiondx.predict(run, folder / "cases.csv", folder / "predictions.csv", root=root)
    return out.set_index("case_id")


def test_the_diagnosis_from_onnx_and_the_findings_from_pytorch_equal_predict(
    generating_service: Any,
    generating_run: Path,
    full_cases: pd.DataFrame,
    upload: Any,
    cohort_dir: Path,
    tmp_path: Path,
) -> None:
    svc = generating_service
    assert svc.session is not None and svc.generated == ["findings"]
    assert [t.name for t in svc.graph_tasks] == ["diagnosis"]
    expected = _library(generating_run, full_cases, cohort_dir, tmp_path)
    client = TestClient(create_app(svc), raise_server_exceptions=False)
    for _, row in full_cases.iterrows():
        files, data = upload(row)
        r = client.post("/predict", files=files, data={**data, "case_id": row.case_id})
        assert r.status_code == 200, r.text
        a = r.json()
        assert list(a["tasks"]) == ["diagnosis", "findings"]
        want = expected.loc[row.case_id]
        p = a["tasks"]["diagnosis"]["probabilities"]["disease"]
        assert abs(p - want["diagnosis_prob_disease"]) < 1e-4
        findings = a["tasks"]["findings"]
        assert findings["engine"] == "pytorch"
        assert findings["text"] == str(want["findings_pred"]) and findings["text"]
        assert set(a["contributions"]["values"]) == {"cxr", "ecg", "report", "labs"}
    # The card says how the text task is answered.
    md = (generating_run / "MODEL_CARD.md").read_text()
    assert "**findings** (text; written word by word by the PyTorch model)" in md


def test_a_case_without_its_report_gets_findings_and_a_gradcam(
    generating_service: Any, full_cases: pd.DataFrame, upload: Any
) -> None:
    client = TestClient(create_app(generating_service), raise_server_exceptions=False)
    files, data = upload(full_cases.iloc[0], skip="report")
    r = client.post("/predict?explain=true", files=files, data=data)
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["modalities"]["report"] == {"present": False, "contribution": 0.0}
    assert isinstance(a["tasks"]["findings"]["text"], str)
    # Grad-CAM follows the diagnosis alone, not the decoder's second pass over the encoders.
    assert a["explanation"]["cxr"]["method"] == "Grad-CAM"


def test_a_run_that_only_writes_text_is_served_by_pytorch(
    cohort_dir: Path,
    quick_base: dict[str, Any],
    full_cases: pd.DataFrame,
    upload: Any,
    tmp_path: Path,
) -> None:
    from fusiondx.config import Config
    from fusiondx.engine.run import fit
    from fusiondx.serving.service import Service

    cfg = copy.deepcopy(quick_base)
    cfg["name"] = "writes_only"
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path / "runs")
    cfg["train"]["epochs"] = 1
    cfg["tasks"] = [{"name": "findings", "head": "generation", "label": "findings_text"}]
    run = fit(Config.model_validate(cfg)).run_dir

    result = CliRunner().invoke(app, ["export", str(run)])
    said = " ".join(result.output.split())
    assert result.exit_code != 0 and "no graph to export" in said and "fusiondx serve" in said
    assert not (run / "model.onnx").exists()

    svc = Service(run, threads=1)
    try:
        assert svc.session is None and svc.split is None
        client = TestClient(create_app(svc), raise_server_exceptions=False)
        assert client.get("/model").json()["tasks"][0]["type"] == "text"
        row = full_cases.iloc[0]
        files, data = upload(row)
        a = client.post("/predict", files=files, data={**data, "case_id": row.case_id}).json()
    finally:
        svc.close()
    expected = _library(run, full_cases.iloc[[0]], cohort_dir, tmp_path)
    assert a["tasks"] == {
        "findings": {"text": str(expected.loc[row.case_id, "findings_pred"]), "engine": "pytorch"}
    }
    assert "contributions" not in a
