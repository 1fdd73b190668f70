"""The built-in cohort as FHIR R4B bundles (or bulk NDJSON) and OMOP CDM tables, fully synthetic.

:func:`write_interop_example` draws a cohort with :func:`~fusiondx.datasets.synthetic.make_cohort`
(same patients, labels, images, ECGs, reports and labs) into ``<out>/files`` and writes it again
as a clinical system would hold it:

- ``<out>/fhir/``: one Bundle per patient (or, ``bulk=True``, one NDJSON file per resource type):
  Patient, an Encounter per case (id = the case id with ``-`` for ``_``, FHIR ids allow no
  underscore), a Condition (SNOMED CT + ICD-10) for every diseased case, lab Observations (LOINC;
  every fourth CRP in mg/dL instead of mg/L), smoking status, the ECG as ``valueSampledData``
  (microvolt steps), the report as DiagnosticReport conclusion / presentedForm or
  DocumentReference, the image as Media whose ``content.url`` is relative to ``<out>/files``;
- ``<out>/omop/``: person, visit_occurrence, condition_occurrence, measurement, observation and
  note as CSV;
- ``<out>/cohort.yaml``: the cohort file both adapters read.

Dates: each patient is born on 1 January; a case's encounter lies in the year the patient has
the case's age, so the age at the index time is the cohort's age.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fusiondx.datasets.synthetic import make_cohort

SNOMED_DISEASE = ("http://snomed.info/sct", "64572001", "Disease (disorder)")
ICD10_DISEASE = ("http://hl7.org/fhir/sid/icd-10", "R69", "Illness, unspecified")
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# column: (LOINC, display, UCUM unit, OMOP concept id). The concept ids are illustrative.
LABS: dict[str, tuple[str, str, str, int]] = {
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 3020460),
    "troponin": ("67151-1", "Troponin T.cardiac [Mass/volume] in Serum or Plasma", "ng/L", 3019800),
    "bnp": ("33762-6", "NT-proBNP [Mass/volume] in Serum or Plasma", "pg/mL", 3031569),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 3000905),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 40762499),
    "heart_rate_vitals": ("8867-4", "Heart rate", "/min", 3027018),
}
SMOKING = ("72166-2", "Tobacco smoking status", 4275495)
ECG = ("11524-6", "EKG study")
REPORT = ("18748-4", "Diagnostic imaging study")
DISEASE_CONCEPT = 4274025
GENDER_CONCEPT = {"M": 8507, "F": 8532}
MICROVOLT = 0.001  # SampledData factor: samples stored as whole microvolts, values in mV


def fhir_id(value: str) -> str:
    return value.replace("_", "-")


def _dates(frame: pd.DataFrame) -> tuple[dict[str, dt.date], list[dt.datetime]]:
    """Birth date per patient, encounter start per case (see the module docstring)."""
    oldest = frame.groupby("patient_id")["age"].max()
    births = {p: dt.date(2023 - int(a), 1, 1) for p, a in oldest.items()}
    k = frame.groupby("patient_id").cumcount()
    starts = [
        dt.datetime(births[p].year + int(a), 1, 1, 9, 0, tzinfo=dt.timezone.utc)
        + dt.timedelta(days=10 + 45 * int(j))
        for p, a, j in zip(frame["patient_id"], frame["age"], k, strict=True)
    ]
    return births, starts


def _iso(t: dt.datetime, hours: float = 0.0) -> str:
    return (t + dt.timedelta(hours=hours)).isoformat()


def _ref(rtype: str, rid: str) -> dict[str, str]:
    return {"reference": f"{rtype}/{rid}"}


def _code(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def case_resources(
    r: pd.Series, start: dt.datetime, signal: np.ndarray | None, rate: float, n: int
) -> list[dict[str, Any]]:
    """The FHIR resources of one case (everything but its Patient)."""
    cid, pid = fhir_id(r["case_id"]), fhir_id(r["patient_id"])
    subj, enc = _ref("Patient", pid), _ref("Encounter", cid)
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Encounter",
            "id": cid,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "identifier": [{"system": "urn:fusiondx:case", "value": r["case_id"]}],
            "subject": subj,
            "period": {"start": _iso(start), "end": _iso(start, 4)},
        }
    ]
    common = {"subject": subj, "encounter": enc}
    if r["label"] == "disease":
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{cid}-dx",
                **common,
                "code": {
                    "coding": [
                        dict(zip(("system", "code", "display"), c, strict=True))
                        for c in (SNOMED_DISEASE, ICD10_DISEASE)
                    ]
                },
                "verificationStatus": _code(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "confirmed",
                    "Confirmed",
                ),
                "recordedDate": _iso(start, 3),
            }
        )
    obs = {
        "resourceType": "Observation",
        "status": "final",
        **common,
        "effectiveDateTime": _iso(start, 1),
    }
    for col, (loinc, display, unit, _) in LABS.items():
        value = r[col]
        if pd.isna(value):
            continue
        if col == "crp" and n % 4 == 0:  # a lab that reports CRP in mg/dL: converted back by UCUM
            value, unit = round(float(value) / 10.0, 3), "mg/dL"
        out.append(
            {
                **obs,
                "id": f"{cid}-{col.replace('_', '-')}",
                "code": _code(LOINC, loinc, display),
                "valueQuantity": {
                    "value": float(value),
                    "unit": unit,
                    "system": UCUM,
                    "code": unit,
                },
            }
        )
    if isinstance(r["smoker"], str) and r["smoker"]:
        out.append(
            {
                **obs,
                "id": f"{cid}-smoking",
                "code": _code(LOINC, SMOKING[0], SMOKING[1]),
                "valueCodeableConcept": {"text": r["smoker"]},
            }
        )
    if signal is not None:
        data = " ".join(str(int(v)) for v in np.round(signal.T.reshape(-1) / MICROVOLT))
        out.append(
            {
                **obs,
                "id": f"{cid}-ecg",
                "code": _code(LOINC, *ECG),
                "valueSampledData": {
                    "origin": {"value": 0, "unit": "mV", "system": UCUM, "code": "mV"},
                    "period": 1000.0 / rate,
                    "factor": MICROVOLT,
                    "dimensions": int(signal.shape[0]),
                    "data": data,
                },
            }
        )
    if isinstance(r["report"], str) and r["report"]:
        out.append(_report(r["report"], cid, common, start, n))
    if isinstance(r["image"], str) and r["image"]:
        out.append(
            {
                "resourceType": "Media",
                "id": f"{cid}-cxr",
                "status": "completed",
                **common,
                "modality": _code(
                    "http://dicom.nema.org/resources/ontology/DCM", "DX", "Digital Radiography"
                ),
                "createdDateTime": _iso(start, 2),
                "content": {"contentType": "image/png", "url": r["image"]},
            }
        )
    return out


def _report(
    text: str, cid: str, common: dict[str, Any], start: dt.datetime, n: int
) -> dict[str, Any]:
    """Three ways systems hold a report: conclusion, presentedForm, DocumentReference."""
    att = {
        "contentType": "text/plain; charset=utf-8",
        "data": base64.b64encode(text.encode()).decode(),
    }
    if n % 3 == 0:
        return {
            "resourceType": "DocumentReference",
            "id": f"{cid}-note",
            "status": "current",
            "subject": common["subject"],
            "type": _code(LOINC, *REPORT),
            "date": _iso(start, 2),
            "content": [{"attachment": att}],
            "context": {"encounter": [common["encounter"]], "period": {"start": _iso(start, 2)}},
        }
    rep = {
        "resourceType": "DiagnosticReport",
        "id": f"{cid}-report",
        "status": "final",
        **common,
        "code": _code(LOINC, *REPORT),
        "effectiveDateTime": _iso(start, 2),
    }
    return rep | ({"conclusion": text} if n % 3 == 1 else {"presentedForm": [att]})


def write_fhir(frame: pd.DataFrame, files: Path, out: Path, *, bulk: bool, rate: float) -> None:
    births, starts = _dates(frame)
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for n, (_, r) in enumerate(frame.iterrows()):
        signal = np.load(files / r["ecg"]) if isinstance(r["ecg"], str) and r["ecg"] else None
        by_patient.setdefault(r["patient_id"], []).extend(
            case_resources(r, starts[n], signal, rate, n)
        )
    out.mkdir(parents=True, exist_ok=True)
    sexes = frame.groupby("patient_id")["sex"].first()
    by_type: dict[str, list[str]] = {}
    for pid, resources in by_patient.items():
        patient = {
            "resourceType": "Patient",
            "id": fhir_id(pid),
            "gender": {"M": "male", "F": "female"}[sexes[pid]],
            "birthDate": births[pid].isoformat(),
        }
        everything = [patient, *resources]
        if bulk:
            for res in everything:
                by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
            continue
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"urn:fusiondx:{res['resourceType']}/{res['id']}", "resource": res}
                for res in everything
            ],
        }
        (out / f"{fhir_id(pid)}.json").write_text(json.dumps(bundle), encoding="utf-8")
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_omop(frame: pd.DataFrame, out: Path) -> None:
    """The cohort as OMOP CDM v5.4 tables (CSV); images and ECGs have no core OMOP table."""
    births, starts = _dates(frame)
    out.mkdir(parents=True, exist_ok=True)
    pids = {p: i + 1 for i, p in enumerate(dict.fromkeys(frame["patient_id"]))}
    sexes = frame.groupby("patient_id")["sex"].first()
    tables: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "person",
            "visit_occurrence",
            "condition_occurrence",
            "measurement",
            "observation",
            "note",
        )
    }
    for p, i in pids.items():
        b = births[p]
        tables["person"].append(
            {
                "person_id": i,
                "gender_concept_id": GENDER_CONCEPT[sexes[p]],
                "year_of_birth": b.year,
                "month_of_birth": b.month,
                "day_of_birth": b.day,
                "person_source_value": p,
            }
        )
    for n, (_, r) in enumerate(frame.iterrows()):
        v, pid, t = n + 1, pids[r["patient_id"]], starts[n]
        day = t.date().isoformat()
        tables["visit_occurrence"].append(
            {
                "visit_occurrence_id": v,
                "person_id": pid,
                "visit_concept_id": 9202,
                "visit_start_date": day,
                "visit_start_datetime": t.isoformat(),
                "visit_source_value": r["case_id"],
            }
        )
        if r["label"] == "disease":
            tables["condition_occurrence"].append(
                {
                    "condition_occurrence_id": v,
                    "person_id": pid,
                    "condition_concept_id": DISEASE_CONCEPT,
                    "condition_start_date": day,
                    "visit_occurrence_id": v,
                    "condition_source_value": ICD10_DISEASE[1],
                }
            )
        for col, (_, _, unit, concept) in LABS.items():
            if pd.isna(r[col]):
                continue
            value = float(r[col])
            if col == "crp" and n % 4 == 0:
                value, unit = round(value / 10.0, 3), "mg/dL"
            tables["measurement"].append(
                {
                    "measurement_id": len(tables["measurement"]) + 1,
                    "person_id": pid,
                    "measurement_concept_id": concept,
                    "measurement_date": day,
                    "measurement_datetime": t.isoformat(),
                    "value_as_number": value,
                    "unit_source_value": unit,
                    "visit_occurrence_id": v,
                }
            )
        if isinstance(r["smoker"], str) and r["smoker"]:
            tables["observation"].append(
                {
                    "observation_id": v,
                    "person_id": pid,
                    "observation_concept_id": SMOKING[2],
                    "observation_date": day,
                    "value_as_string": r["smoker"],
                    "visit_occurrence_id": v,
                }
            )
        if isinstance(r["report"], str) and r["report"]:
            tables["note"].append(
                {
                    "note_id": v,
                    "person_id": pid,
                    "note_date": day,
                    "note_datetime": t.isoformat(),
                    "note_type_concept_id": 32835,
                    "note_text": r["report"],
                    "visit_occurrence_id": v,
                }
            )
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False, lineterminator="\n")


def example_cohort_file() -> dict[str, Any]:
    features: list[dict[str, Any]] = [
        {"name": col, "code": loinc, "unit": unit, "concept_id": concept}
        for col, (loinc, _, unit, concept) in LABS.items()
    ]
    features.append(
        {"name": "smoker", "code": SMOKING[0], "concept_id": SMOKING[2], "categorical": True}
    )
    window = [-1, 1]
    return {
        "case": "encounter",
        "label": {
            "name": "label",
            "positive": "disease",
            "negative": "healthy",
            "conditions": [
                {"system": "snomed", "code": SNOMED_DISEASE[1]},
                {"system": "icd10", "code": ICD10_DISEASE[1]},
            ],
            "concept_ids": [DISEASE_CONCEPT],
            "window": [0, 1],
        },
        "windows": {"tabular": window, "signal": window, "text": window, "image": window},
        "demographics": ["age", "sex"],
        "features": features,
        "signal": {"name": "ecg", "code": ECG[0]},
        "text": {"name": "report"},
        "image": {"name": "image"},
    }


def write_interop_example(
    out: str | Path, *, n_cases: int = 200, seed: int = 0, bulk: bool = False, image_size: int = 32
) -> Path:
    """Write ``files/`` (the built-in cohort), ``fhir/``, ``omop/`` and ``cohort.yaml`` into
    ``out``; returns ``out``."""
    out = Path(out)
    files = out / "files"
    rate = 100
    manifest = make_cohort(
        files,
        n_cases=n_cases,
        seed=seed,
        image_size=image_size,
        signal_format="npy",
        signal_rate=rate,
    )
    frame = pd.read_csv(manifest, keep_default_na=False, na_values=[""])
    write_fhir(frame, files, out / "fhir", bulk=bulk, rate=rate)
    write_omop(frame, out / "omop")
    (out / "cohort.yaml").write_text(
        yaml.safe_dump(example_cohort_file(), sort_keys=False), encoding="utf-8"
    )
    return out
