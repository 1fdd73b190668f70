"""The served API against the library: the same answers as `fusiondx.predict`, every modality
missing in turn, and every kind of bad request answered with a 4xx naming its field."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import fusiondx  # noqa: E402
from fusiondx.serving.app import Settings, create_app  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODALITIES = ["cxr", "ecg", "report", "labs"]


@pytest.fixture(scope="module")
def client(service: Any) -> TestClient:
    return TestClient(create_app(service), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def guarded(service: Any) -> TestClient:
    """The app with a token and a 1 MB body limit."""
    app = create_app(service, Settings(max_upload_mb=1, token=TOKEN))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def library(
    served_run: Path, full_cases: pd.DataFrame, cohort_dir: Path, tmp_path_factory
) -> pd.DataFrame:
    """`fusiondx.predict` on the full cases and on the first case with each modality blanked."""
    rows = [full_cases]
    blank = {
        "cxr": ["image"],
        "ecg": ["ecg"],
        "report": ["report"],
        "labs": ["age", "sex", "crp", "troponin", "smoker"],
    }
    for m in MODALITIES:
        r = full_cases.iloc[[0]].copy()
        r[blank[m]] = np.nan
        r["case_id"] = f"without_{m}"
        rows.append(r)
    folder = tmp_path_factory.mktemp("serve_predict")
    manifest = folder / "cases.csv"
    pd.concat(rows).to_csv(manifest, index=False)
    out = fusiondx.predict(served_run, manifest, folder / "predictions.csv", root=cohort_dir)
    return out.set_index("case_id")


def _check_equal(answer: dict[str, Any], expected: pd.Series) -> None:
    task = answer["tasks"]["diagnosis"]
    assert abs(task["probabilities"]["disease"] - expected["diagnosis_prob_disease"]) < 1e-4
    assert abs(task["probabilities"]["healthy"] + task["probabilities"]["disease"] - 1) < 1e-6
    assert task["prediction"] == expected["diagnosis_pred"]
    assert "|".join(task["set"]) == expected["diagnosis_set"]
    assert task["refer"] == bool(expected["diagnosis_refer"])


def test_health_and_model_card(client: TestClient, served_run: Path) -> None:
    assert client.get("/health").json()["status"] == "ok"
    card = client.get("/model").json()
    assert [i["name"] for i in card["inputs"]] == ["cxr", "ecg", "report", "labs"]
    labs = next(i for i in card["inputs"] if i["name"] == "labs")
    sex = next(c for c in labs["columns"] if c["name"] == "sex")
    assert sex["type"] == "category" and set(sex["categories"]) == {"F", "M"}
    assert card["tasks"][0]["classes"] == ["healthy", "disease"]
    split = card["training_data"]["cases"]
    balance = card["training_data"]["class_balance"]["diagnosis"]
    assert sum(balance["train"].values()) == split["train"]
    auroc = card["test_metrics"]["diagnosis"]["metrics"]["auroc"]
    lo, hi = auroc["ci95"]
    assert lo <= auroc["value"] <= hi
    assert card["intended_use"] and card["limits"]
    # `fusiondx export` wrote the same card as Markdown beside model.onnx.
    md = (served_run / "MODEL_CARD.md").read_text()
    assert md.startswith("# Model card: quick") and "| auroc |" in md and "## Limits" in md


def test_page_is_served_without_outside_resources(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "https://" not in r.text
    assert client.get("/static/../card.py").status_code == 404


def test_happy_path_equals_predict(
    client: TestClient, full_cases: pd.DataFrame, upload: Any, library: pd.DataFrame
) -> None:
    for _, row in full_cases.iterrows():
        files, data = upload(row)
        r = client.post("/predict", files=files, data={**data, "case_id": row.case_id})
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["case_id"] == row.case_id
        _check_equal(a, library.loc[row.case_id])
        assert all(a["modalities"][m]["present"] for m in MODALITIES)
        c = a["contributions"]
        # Exact Shapley values add up to the prediction minus the no-input base.
        assert abs(sum(c["values"].values()) - (c["probability"] - c["base"])) < 1e-5
        assert abs(c["probability"] - a["tasks"]["diagnosis"]["probabilities"]["disease"]) < 1e-6


@pytest.mark.parametrize("missing", MODALITIES)
def test_every_modality_missing_in_turn(
    client: TestClient, full_cases: pd.DataFrame, upload: Any, library: pd.DataFrame, missing: str
) -> None:
    files, data = upload(full_cases.iloc[0], skip=missing)
    r = client.post("/predict", files=files, data=data)
    assert r.status_code == 200, r.text
    a = r.json()
    _check_equal(a, library.loc[f"without_{missing}"])
    assert a["modalities"][missing] == {"present": False, "contribution": 0.0}
    assert all(a["modalities"][m]["present"] for m in MODALITIES if m != missing)


def test_labs_as_one_json_field(client: TestClient, full_cases: pd.DataFrame, upload: Any) -> None:
    row = full_cases.iloc[0]
    files, data = upload(row)
    labs = {c: data.pop(c) for c in ("age", "sex", "crp", "troponin", "smoker") if c in data}
    one = client.post("/predict", files=files, data={**data, "labs": json.dumps(labs)}).json()
    two = client.post("/predict", files=files, data={**data, **labs}).json()
    assert one["tasks"] == two["tasks"]


def test_explain_returns_a_gradcam_png(
    client: TestClient, full_cases: pd.DataFrame, upload: Any
) -> None:
    files, data = upload(full_cases.iloc[0])
    a = client.post("/predict?explain=true", files=files, data=data).json()
    cam = a["explanation"]["cxr"]
    assert cam["method"] == "Grad-CAM"
    assert base64.b64decode(cam["png"]).startswith(b"\x89PNG")


def test_other_formats_decode_as_in_training(
    client: TestClient, full_cases: pd.DataFrame, upload: Any, cohort_dir: Path
) -> None:
    """The image as NPY answers as the PNG does; an ECG as NPY (no rate of its own) is refused
    as training would refuse it, since this run's config gives no source_rate."""
    from PIL import Image

    row = full_cases.iloc[0]
    files, data = upload(row, skip="cxr")
    png = client.post("/predict", files=upload(row)[0], data=data).json()
    buf = io.BytesIO()
    np.save(buf, np.asarray(Image.open(cohort_dir / row.image)))
    r = client.post("/predict", files=[*files, ("cxr", ("x.bin", buf.getvalue()))], data=data)
    assert r.status_code == 200, r.text
    p_npy = r.json()["tasks"]["diagnosis"]["probabilities"]["disease"]
    assert p_npy == pytest.approx(png["tasks"]["diagnosis"]["probabilities"]["disease"], abs=1e-5)
    files, data = upload(row, skip="ecg")
    sig = io.BytesIO()
    np.save(sig, np.zeros((3, 500), dtype=np.float32))  # the run's 3 leads
    r = client.post("/predict", files=[*files, ("ecg", ("x.npy", sig.getvalue()))], data=data)
    assert r.status_code == 422 and r.json()["field"] == "ecg" and "source_rate" in r.json()["fix"]


def test_batch_equals_single_requests(
    client: TestClient, full_cases: pd.DataFrame, cohort_dir: Path, library: pd.DataFrame
) -> None:
    cases = []
    for _, row in full_cases.iterrows():
        hea = cohort_dir / row.ecg
        cases.append(
            {
                "case_id": row.case_id,
                "cxr": base64.b64encode((cohort_dir / row.image).read_bytes()).decode(),
                "ecg": [
                    base64.b64encode(p.read_bytes()).decode()
                    for p in (hea, hea.with_suffix(".dat"))
                ],
                "report": row.report,
                "labs": {c: row[c] for c in ("age", "sex", "crp", "troponin", "smoker")},
            }
        )
    r = client.post("/predict/batch", json={"cases": cases})
    assert r.status_code == 200, r.text
    got = r.json()["cases"]
    assert [a["case_id"] for a in got] == list(full_cases.case_id)
    for a in got:
        _check_equal(a, library.loc[a["case_id"]])


def _nifti_bomb() -> bytes:
    """A few hundred gzipped bytes whose header declares 2000^3 float32 voxels."""
    import gzip
    import struct

    import nibabel as nib

    head = bytearray(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).to_bytes()[:352])
    struct.pack_into("<8h", head, 40, 3, 2000, 2000, 2000, 1, 1, 1, 1)
    return gzip.compress(bytes(head) + b"\0" * 64)


def test_a_dicom_upload_decodes(
    client: TestClient, full_cases: pd.DataFrame, upload: Any, tmp_path: Path
) -> None:
    """A DICOM file (told by its 'DICM' preamble, whatever its name) is read by the DICOM reader."""
    from fusiondx.data.readers.image.dicom import write_dicom_file

    row = full_cases.iloc[0]
    files, data = upload(row, skip="cxr")
    stored = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    dcm = write_dicom_file(tmp_path / "scan.dcm", stored, slope=1.0, intercept=0.0)
    r = client.post("/predict", files=[*files, ("cxr", ("no_suffix", dcm.read_bytes()))], data=data)
    assert r.status_code == 200, r.text
    assert r.json()["modalities"]["cxr"]["present"] is True


def _dicom_without_pixels() -> bytes:
    return b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00abcd" + b"\x01" * 200


BAD = {
    "text as an image": ({"files": [("cxr", ("scan.png", b"not an image at all"))]}, 415, "cxr"),
    "image as a signal": (
        {"files": [("ecg", ("ecg.hea", b"\x89PNG\r\n\x1a\n" + b"\0" * 64))]},
        415,
        "ecg",
    ),
    "corrupt DICOM": ({"files": [("cxr", ("scan.dcm", _dicom_without_pixels()))]}, 422, "cxr"),
    "truncated PNG": (
        {"files": [("cxr", ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40))]},
        422,
        "cxr",
    ),
    "WFDB header alone": (
        {"files": [("ecg", ("r.hea", b"r 1 100 1000\nr.dat 16 200 16 0 0 0 0 I\n"))]},
        422,
        "ecg",
    ),
    "unknown field": ({"data": {"agee": "61"}}, 422, "agee"),
    "file in a text field": ({"files": [("report", ("r.txt", b"some text"))]}, 422, "report"),
    "bad tabular value": ({"data": {"age": "sixty"}}, 422, "age"),
    "bad labs JSON": ({"data": {"labs": "{age: 61"}}, 422, "labs"),
    "unknown labs column": ({"data": {"labs": '{"agee": 61}'}}, 422, "labs.agee"),
    "no input at all": ({"data": {"case_id": "x"}}, 422, None),
    "NIfTI that inflates to 30 GB": ({"files": [("cxr", ("v.nii.gz", _nifti_bomb()))]}, 413, "cxr"),
}


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom.*")
@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_uploads_are_4xx_naming_the_field(client: TestClient, case: str) -> None:
    kwargs, status, field = BAD[case]
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "field", "fix"} and body["field"] == field
    assert body["error"] and body["fix"]
    assert "Traceback" not in r.text and "fusiondx-serve-" not in r.text  # no server path shown


def test_too_large_token_and_batch_errors(
    guarded: TestClient, full_cases: pd.DataFrame, upload: Any
) -> None:
    files, data = upload(full_cases.iloc[0])
    missing = guarded.post("/predict", files=files, data=data)
    assert missing.status_code == 401 and missing.json()["field"] == "Authorization"
    wrong = guarded.post("/predict", files=files, data=data, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    assert guarded.post("/predict", files=files, data=data, headers=AUTH).status_code == 200
    big = [("cxr", ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 1_200_000))]
    r = guarded.post("/predict", files=big, headers=AUTH)
    assert r.status_code == 413 and "1 MB" in r.json()["error"]
    r = guarded.post("/predict/batch", json={"cases": [{"cxr": "%%%"}]}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "cases[0].cxr"
    r = guarded.post("/predict/batch", content=b"not json", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert guarded.get("/health").json()["token_required"] is True


def test_unexpected_failure_is_500_without_traceback(
    service: Any, full_cases: pd.DataFrame, upload: Any, monkeypatch
) -> None:
    app = create_app(service)
    monkeypatch.setattr(service, "decode", lambda *a, **k: 1 / 0)
    files, data = upload(full_cases.iloc[0])
    r = TestClient(app, raise_server_exceptions=False).post("/predict", files=files, data=data)
    assert r.status_code == 500
    assert r.json()["field"] is None and "ZeroDivision" not in r.text and "Traceback" not in r.text


def test_cors_closed_unless_asked(service: Any) -> None:
    pre = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    closed = TestClient(create_app(service)).options("/predict", headers=pre)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(create_app(service, Settings(cors_origins=("https://elsewhere.example",))))
    assert opened.options("/predict", headers=pre).headers["access-control-allow-origin"] == (
        "https://elsewhere.example"
    )


def test_uploads_are_removed(
    client: TestClient, service: Any, full_cases: pd.DataFrame, upload: Any
) -> None:
    files, data = upload(full_cases.iloc[0])
    client.post("/predict", files=files, data=data)
    client.post("/predict", files=[("cxr", ("x.png", b"junk"))])
    assert list(service.root.iterdir()) == []


def test_a_study_folder_serves_its_winner_and_refuses_a_reference_winner(
    served_run: Path, tmp_path: Path
) -> None:
    import json

    from fusiondx.errors import RunError
    from fusiondx.serving.server import resolve_run

    study = tmp_path / "study"
    study.mkdir()
    runs = [{"name": "s0", "seed": 0, "run_dir": str(served_run)}]
    entries = [
        {"id": "fusion_concat", "label": "concat", "runs": runs},
        {"id": "ref_logreg", "label": "logistic regression", "runs": []},
    ]
    (study / "results.json").write_text(json.dumps({"winner": "fusion_concat", "entries": entries}))
    assert resolve_run(study) == (served_run, "the study's winner, concat (s0)")
    assert resolve_run(served_run) == (served_run, None)
    (study / "results.json").write_text(json.dumps({"winner": "ref_logreg", "entries": entries}))
    with pytest.raises(RunError, match="winner 'ref_logreg' has no FusionDx run"):
        resolve_run(study)
