"""`prepare fhir` / `prepare omop`: the built-in cohort written as FHIR and OMOP comes back as the
same manifest values; bad resources, missing references, unit mismatches and path escapes are
skipped with their reason."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("fhir.resources")
pytest.importorskip("ucumvert")

from fusiondx.datasets._fhir_synthetic import fhir_id, write_interop_example  # noqa: E402
from fusiondx.datasets.fhir import decode_sampled_data  # noqa: E402
from fusiondx.datasets.prepare import prepare_dataset  # noqa: E402
from fusiondx.errors import ConfigError, DataError  # noqa: E402

LABS = ["crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals"]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interop_example(tmp_path_factory.mktemp("interop"), n_cases=40, seed=3)


@pytest.fixture(scope="module")
def truth(example: Path) -> pd.DataFrame:
    frame = pd.read_csv(example / "files" / "manifest.csv", keep_default_na=False, na_values=[""])
    return frame.set_index("case_id")


@pytest.fixture(scope="module")
def fhir_prepared(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared_fhir")
    prepare_dataset(
        "fhir",
        example / "fhir",
        out,
        cohort=str(example / "cohort.yaml"),
        image_root=str(example / "files"),
    )
    return out


def _by_case(manifest: Path, ids: pd.Series | None = None) -> pd.DataFrame:
    frame = pd.read_csv(manifest, keep_default_na=False, na_values=[""])
    frame.index = frame["case_id"].str.replace("-", "_") if ids is None else ids
    return frame


def test_fhir_round_trip(fhir_prepared: Path, truth: pd.DataFrame, example: Path) -> None:
    got = _by_case(fhir_prepared / "manifest.csv")
    assert sorted(got.index) == sorted(truth.index)
    got = got.loc[truth.index]
    assert (got["label"] == truth["label"]).all() and (truth["label"] == "disease").any()
    assert (got["patient_id"] == truth["patient_id"].map(fhir_id)).all()
    assert (got["age"] == truth["age"]).all() and (got["sex"] == truth["sex"]).all()
    for col in LABS:  # every fourth CRP travelled in mg/dL and was converted back through UCUM
        np.testing.assert_allclose(got[col], truth[col], rtol=1e-9, atol=1e-9)
    assert got["smoker"].fillna("").tolist() == truth["smoker"].fillna("").tolist()
    assert got["report"].fillna("").tolist() == truth["report"].fillna("").tolist()
    for cid in truth.index:
        src, out = truth.at[cid, "ecg"], got.at[cid, "ecg"]
        assert isinstance(src, str) == isinstance(out, str)
        if isinstance(src, str):  # whole microvolts in the FHIR data
            a, b = np.load(example / "files" / src), np.load(fhir_prepared / out)
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=0.0005 + 1e-6)
        src, out = truth.at[cid, "image"], got.at[cid, "image"]
        assert isinstance(src, str) == isinstance(out, str)
        if isinstance(src, str):
            assert (fhir_prepared / out).read_bytes() == (example / "files" / src).read_bytes()
    assert pd.read_csv(fhir_prepared / "skipped.csv").empty


def test_written_config_validates_and_names_every_modality(fhir_prepared: Path) -> None:
    from typer.testing import CliRunner

    from fusiondx.cli import app
    from fusiondx.config import load_config

    cfg = load_config(fhir_prepared / "fhir.yaml")
    assert {m.name for m in cfg.modalities} == {"labs", "image", "ecg", "report"}
    ecg = next(m for m in cfg.modalities if m.name == "ecg")
    assert ecg.preprocessing.source_rate == 100.0 and ecg.preprocessing.leads == 3
    result = CliRunner().invoke(app, ["validate", str(fhir_prepared / "fhir.yaml")])
    assert result.exit_code == 0, result.output


def test_bulk_ndjson_gives_the_same_manifest(
    example: Path, fhir_prepared: Path, tmp_path: Path
) -> None:
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    by_type: dict[str, list[str]] = {}
    for bundle in sorted((example / "fhir").glob("*.json")):
        for e in json.loads(bundle.read_text())["entry"]:
            by_type.setdefault(e["resource"]["resourceType"], []).append(json.dumps(e["resource"]))
    for rtype, lines in by_type.items():
        (bulk / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    prepare_dataset(
        "fhir", bulk, out, cohort=str(example / "cohort.yaml"), image_root=str(example / "files")
    )
    a = _by_case(out / "manifest.csv").sort_index()
    b = _by_case(fhir_prepared / "manifest.csv").sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_omop_round_trip_csv_and_sqlite(example: Path, truth: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "omop"
    res = prepare_dataset("omop", example / "omop", out, cohort=str(example / "cohort.yaml"))
    visits = pd.read_csv(example / "omop" / "visit_occurrence.csv")
    case_of = dict(
        zip(visits["visit_occurrence_id"].astype(str), visits["visit_source_value"], strict=True)
    )
    frame = pd.read_csv(
        out / "manifest.csv", keep_default_na=False, na_values=[""], dtype={"case_id": str}
    )
    got = _by_case(out / "manifest.csv", frame["case_id"].map(case_of)).loc[truth.index]
    assert (got["label"] == truth["label"]).all() and (got["age"] == truth["age"]).all()
    assert (got["sex"] == truth["sex"]).all()
    for col in LABS:
        np.testing.assert_allclose(got[col], truth[col], rtol=1e-9, atol=1e-9)
    assert got["report"].fillna("").tolist() == truth["report"].fillna("").tolist()
    assert any("no case has a signal" in n for n in res.notes)  # the core CDM has no waveforms
    # the same tables in a database
    db = tmp_path / "cdm.db"
    with sqlite3.connect(db) as conn:
        for table in (example / "omop").glob("*.csv"):
            pd.read_csv(table).to_sql(table.stem, conn, index=False)
    prepare_dataset(
        "omop", f"sqlite:///{db}", tmp_path / "omop_db", cohort=str(example / "cohort.yaml")
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "omop_db" / "manifest.csv"), pd.read_csv(out / "manifest.csv")
    )


def _bundle(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def test_bad_resources_are_skipped_with_the_reason(example: Path, tmp_path: Path) -> None:
    src = tmp_path / "fhir"
    shutil.copytree(example / "fhir", src)
    first = sorted(src.glob("*.json"))[0]
    bundle = json.loads(first.read_text())
    pid = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    enc = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    ctx = {
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{enc['id']}"},
        "effectiveDateTime": enc["period"]["start"],
    }
    crp = {"system": "http://loinc.org", "code": "1988-5"}
    bad = [
        {
            "resourceType": "Observation",
            "id": "bad-value",
            "status": "final",
            "code": {"coding": [crp]},
            "valueQuantity": {"value": "lots"},
            **ctx,
        },
        {
            "resourceType": "Observation",
            "id": "wrong-unit",
            "status": "final",
            "code": {"coding": [crp]},
            "valueQuantity": {
                "value": 3.0,
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
            **ctx,
        },
        {
            "resourceType": "Observation",
            "id": "orphan",
            "status": "final",
            "code": {"coding": [crp]},
            "valueQuantity": {"value": 3.0, "code": "mg/L"},
            **{**ctx, "subject": {"reference": "Patient/nobody"}},
        },
        {
            "resourceType": "Media",
            "id": "escape",
            "status": "completed",
            "content": {"url": "../../../etc/passwd"},
            "subject": ctx["subject"],
            "encounter": ctx["encounter"],
        },
        {
            "resourceType": "Media",
            "id": "lost-binary",
            "status": "completed",
            "content": {"url": "Binary/gone"},
            "subject": ctx["subject"],
            "encounter": ctx["encounter"],
        },
        {
            "resourceType": "Observation",
            "id": "ragged-ecg",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "11524-6"}]},
            "valueSampledData": {
                "origin": {"value": 0},
                "period": 10,
                "dimensions": 3,
                "data": "1 2 3 4",
            },
            **ctx,
        },
    ]
    (src / "extra.json").write_text(json.dumps(_bundle(bad)))
    (src / "broken.ndjson").write_text('{"resourceType": "Patient", "id": "p-ok"}\n{not json\n')
    out = tmp_path / "out"
    res = prepare_dataset(
        "fhir", src, out, cohort=str(example / "cohort.yaml"), image_root=str(example / "files")
    )
    reasons = dict(res.skipped)
    assert "valueQuantity.value" in reasons["Observation/bad-value"]
    assert (
        "mmol/L" in reasons["Observation/wrong-unit"]
        and "mg/L" in reasons["Observation/wrong-unit"]
    )
    assert "1988-5" in reasons["Observation/wrong-unit"]
    assert "nobody" in reasons["Observation/orphan"]
    assert "not JSON" in reasons["broken.ndjson:2"]
    # the ragged ECG is older than the case's own, so it is never chosen: decoded directly
    with pytest.raises(DataError, match="multiple of its 3 dimensions"):
        decode_sampled_data(bad[5]["valueSampledData"])
    text = (out / "skipped.csv").read_text()
    assert "Traceback" not in text


def test_image_escape_and_missing_binary_are_reasons(example: Path, tmp_path: Path) -> None:
    """A case whose only image reference leaves the root, and one naming a missing Binary."""

    def resources(media: dict) -> list[dict]:
        return [
            {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"},
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p1"},
                "period": {"start": "2020-01-10T09:00:00+00:00"},
            },
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": "2020-01-10T10:00:00+00:00",
                "valueQuantity": {
                    "value": 2.0,
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/dL",
                },
            },
            {
                "resourceType": "Media",
                "id": "m1",
                "status": "completed",
                "subject": {"reference": "Patient/p1"},
                "createdDateTime": "2020-01-10T10:00:00+00:00",
                "content": media,
            },
        ]

    for media, reason in (
        ({"url": "../outside.png"}, "escapes the image root"),
        ({"url": "Binary/gone"}, "Binary/gone"),
    ):
        src = tmp_path / reason.split()[0].replace("/", "_")
        src.mkdir()
        (src / "b.json").write_text(json.dumps(_bundle(resources(media))))
        res = prepare_dataset(
            "fhir",
            src,
            src / "out",
            cohort=str(example / "cohort.yaml"),
            image_root=str(example / "files"),
        )
        assert res.cases == 1
        assert reason in dict(res.skipped)["Media/m1"]
        frame = pd.read_csv(src / "out" / "manifest.csv")
        assert frame.at[0, "crp"] == pytest.approx(20.0)  # 2 mg/dL in the cohort's mg/L


def test_cohort_file_errors_name_the_key(example: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((example / "cohort.yaml").read_text())
    raw["windows"]["tabular"] = [2, -2]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="windows.tabular"):
        prepare_dataset("fhir", example / "fhir", tmp_path / "o", cohort=str(bad))
    raw = yaml.safe_load((example / "cohort.yaml").read_text())
    raw["label"]["conditons"] = raw["label"].pop("conditions")
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="label.conditons"):
        prepare_dataset("fhir", example / "fhir", tmp_path / "o", cohort=str(bad))
    with pytest.raises(DataError, match="cohort file"):
        prepare_dataset("omop", example / "omop", tmp_path / "o")
    with pytest.raises(DataError, match="no person table"):
        prepare_dataset("omop", tmp_path, tmp_path / "o2", cohort=str(example / "cohort.yaml"))


def test_observation_rule_label(example: Path, truth: pd.DataFrame, tmp_path: Path) -> None:
    """The label from a lab value instead of a diagnosis: CRP of 10 mg/L or more."""
    raw = yaml.safe_load((example / "cohort.yaml").read_text())
    raw["label"] = {
        "name": "high_crp",
        "positive": "high",
        "negative": "normal",
        "observation": {"code": "1988-5", "op": ">=", "value": 10.0, "concept_id": 3020460},
        "window": [-1, 1],
    }
    spec = tmp_path / "crp.yaml"
    spec.write_text(yaml.safe_dump(raw))
    res = prepare_dataset("omop", example / "omop", tmp_path / "o", cohort=str(spec))
    has_crp = truth["crp"].notna()
    assert res.cases == int(has_crp.sum())
    assert res.label_counts["high"] == int((truth.loc[has_crp, "crp"] >= 10.0).sum())
    assert sum("no high_crp value" in r for _, r in res.skipped) == int((~has_crp).sum())


def test_one_case_per_patient_at_the_last_encounter(
    example: Path, truth: pd.DataFrame, tmp_path: Path
) -> None:
    raw = yaml.safe_load((example / "cohort.yaml").read_text())
    raw["case"] = "patient"
    spec = tmp_path / "patients.yaml"
    spec.write_text(yaml.safe_dump(raw))
    res = prepare_dataset("omop", example / "omop", tmp_path / "o", cohort=str(spec))
    person = pd.read_csv(example / "omop" / "person.csv")
    source = dict(zip(person["person_id"].astype(str), person["person_source_value"], strict=True))
    got = pd.read_csv(
        tmp_path / "o" / "manifest.csv",
        dtype={"case_id": str},
        keep_default_na=False,
        na_values=[""],
    )
    got.index = got["case_id"].map(source)
    last = (
        truth.reset_index().groupby("patient_id").tail(1).set_index("patient_id")
    )  # the latest visit
    assert res.cases == len(last) == truth["patient_id"].nunique()
    got = got.loc[last.index]
    assert (got["label"] == last["label"]).all() and (got["age"] == last["age"]).all()
    np.testing.assert_allclose(got["crp"], last["crp"], rtol=1e-9)


def test_imaging_study_resolves_to_its_dicom_under_the_root(example: Path, tmp_path: Path) -> None:
    from fusiondx.datasets.synthetic import make_cohort

    dicoms = tmp_path / "dicoms"
    manifest = make_cohort(dicoms, n_cases=2, seed=0, image_size=16, image_format="dicom")
    dcm = dicoms / pd.read_csv(manifest)["image"].dropna().iloc[0]
    root = tmp_path / "pacs"
    (root / "1.2.3" / "1.2.3.4").mkdir(parents=True)
    shutil.copyfile(dcm, root / "1.2.3" / "1.2.3.4" / "1.2.3.4.5.dcm")
    subj = {"reference": "Patient/p1"}
    study = {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "status": "available",
        "subject": subj,
        "started": "2020-01-10T10:00:00+00:00",
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
        "series": [
            {
                "uid": "1.2.3.4",
                "modality": {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": "DX",
                },
                "instance": [
                    {
                        "uid": "1.2.3.4.5",
                        "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": "urn:oid:1.2.840.10008.5.1.4.1.1.1.1",
                        },
                    }
                ],
            }
        ],
    }
    resources = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1950-06-01"},
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": subj,
            "period": {"start": "2020-01-10T09:00:00+00:00"},
        },
        study,
    ]
    src = tmp_path / "fhir"
    src.mkdir()
    (src / "b.json").write_text(json.dumps(_bundle(resources)))
    res = prepare_dataset(
        "fhir", src, tmp_path / "out", cohort=str(example / "cohort.yaml"), image_root=str(root)
    )
    frame = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert res.cases == 1 and frame.at[0, "age"] == 69 and frame.at[0, "sex"] == "M"
    assert (tmp_path / "out" / frame.at[0, "image"]).read_bytes() == dcm.read_bytes()
