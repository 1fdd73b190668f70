"""Predictions as FHIR R4B ``RiskAssessment`` resources (`fusiondx predict --format fhir`).

One RiskAssessment per case and classification task: ``subject`` the patient (``Patient/<id>``
from the manifest's patient column, else an identifier holding the case id), ``prediction``
the probability of each class the predictions table holds (binary tasks: the positive one) as
``outcome``, ``method`` the model (FusionDx version, run name, SHA-256 of the weights),
``basis`` the modalities the case had, and the same identity in extensions for machines.
Written as a ``collection`` Bundle (``.json``) or NDJSON (``.ndjson``), every resource
validated with ``fhir.resources`` first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.data.store import CaseStore
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import ConfigError, DataError, RunError

EXT = "https://fusiondx.dev/fhir/StructureDefinition/"
CASE_SYSTEM = "urn:fusiondx:case-id"
MODEL_SYSTEM = "urn:fusiondx:model-sha256"


def model_hash(weights: Path) -> str:
    h = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fhir_id(text: str) -> str:
    """A valid FHIR id (letters, digits, '-', '.'; at most 64) made from ``text``."""
    out = "".join(c if c.isalnum() or c in "-." else "-" for c in str(text))
    return out[:64] or "x"


def risk_assessments(
    frame: pd.DataFrame,
    tasks: Sequence[Any],
    patients: dict[str, str] | None,
    modalities: Sequence[str],
    mask: np.ndarray,
    *,
    run_name: str,
    version: str,
    sha256: str,
) -> list[dict[str, Any]]:
    """The RiskAssessments of a predictions table (rows aligned with ``mask``)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    shown = {t.name: [c for c in t.classes if f"{t.name}_prob_{c}" in frame] for t in tasks}
    classified = [t for t in tasks if shown[t.name]]
    if not classified:
        raise RunError(
            "--format fhir writes class probabilities, and this run has no classification task.",
            fix="use the default CSV output for regression or survival tasks",
        )
    method = {
        "coding": [
            {"system": MODEL_SYSTEM, "code": sha256, "display": f"FusionDx {version} {run_name}"}
        ],
        "text": f"FusionDx {version}, run {run_name}, weights sha256 {sha256[:12]}",
    }
    out = []
    for i, r in enumerate(frame.to_dict("records")):
        cid = str(r["case_id"])
        present = [m for m, on in zip(modalities, mask[i], strict=True) if on]
        absent = [m for m, on in zip(modalities, mask[i], strict=True) if not on]
        pid = (patients or {}).get(cid)
        subject = (
            {"reference": f"Patient/{fhir_id(pid)}"}
            if pid
            else {"identifier": {"system": CASE_SYSTEM, "value": cid}, "display": f"case {cid}"}
        )
        for t in classified:
            res: dict[str, Any] = {
                "resourceType": "RiskAssessment",
                "id": fhir_id(f"{cid}-{t.name}"),
                "identifier": [{"system": CASE_SYSTEM, "value": cid}],
                "status": "final",
                "code": {"text": t.name},
                "subject": subject,
                "occurrenceDateTime": now,
                "method": method,
                "basis": [{"display": f"{m} present"} for m in present],
                "prediction": [
                    {
                        "outcome": {"text": c},
                        "probabilityDecimal": round(float(r[f"{t.name}_prob_{c}"]), 6),
                    }
                    for c in shown[t.name]
                ],
                "extension": [
                    {"url": EXT + "fusiondx-version", "valueString": version},
                    {"url": EXT + "run-name", "valueString": run_name},
                    {"url": EXT + "model-sha256", "valueString": sha256},
                    *({"url": EXT + "modality-present", "valueString": m} for m in present),
                    *({"url": EXT + "modality-missing", "valueString": m} for m in absent),
                ],
            }
            pred = r.get(f"{t.name}_pred")
            if isinstance(pred, str):
                res["prediction"][0]["rationale"] = f"predicted class: {pred}"
            out.append(res)
    return out


def validate_resources(resources: Sequence[dict[str, Any]]) -> None:
    """Every resource through fhir.resources' R4B model; a failure is a DataError naming it."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise ConfigError(
            "--format fhir needs the fhir.resources package.", fix="pip install 'fusiondx[interop]'"
        ) from None
    from pydantic import ValidationError

    for res in resources:
        try:
            get_fhir_model_class(res["resourceType"]).model_validate(res)
        except ValidationError as exc:  # a bug of ours, said plainly
            raise DataError(
                f"{res['resourceType']}/{res.get('id')} is not valid FHIR: {exc.errors()[0]}",
                fix="report this as a FusionDx bug",
            ) from None


def write_resources(resources: Sequence[dict[str, Any]], out: Path) -> str:
    """A collection Bundle (``.json``) or NDJSON (``.ndjson``, one resource a line)."""
    validate_resources(resources)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".ndjson":
        out.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
        return "ndjson"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "entry": [
            {"fullUrl": f"urn:fusiondx:RiskAssessment/{r['id']}", "resource": r} for r in resources
        ],
    }
    validate_resources([bundle])
    out.write_text(json.dumps(bundle, indent=1), encoding="utf-8")
    return "bundle"


def write_predictions(
    run: RunDir,
    cfg: Config,
    data: Path,
    tasks: Sequence[Any],
    store: CaseStore,
    frame: pd.DataFrame,
    out: Path,
) -> None:
    """``predict``'s table as RiskAssessments, each naming its patient from the manifest."""
    from importlib.metadata import version

    from fusiondx.data.manifest import read_manifest

    patients = None
    if cfg.data.patient_column:
        df = read_manifest(data, sep=cfg.data.sep, id_column=cfg.data.id_column)
        if cfg.data.patient_column in df:
            pairs = zip(
                df[cfg.data.id_column].astype(str), df[cfg.data.patient_column], strict=True
            )
            patients = {c: str(p) for c, p in pairs if pd.notna(p) and str(p)}
    resources = risk_assessments(
        frame,
        tasks,
        patients,
        store.modalities,
        store.mask,
        run_name=run.path.name,
        version=version("fusiondx"),
        sha256=model_hash(run.weights_file),
    )
    write_resources(resources, out)


def is_fhir_output(path: Path) -> bool:
    """Whether ``path`` is a RiskAssessment file FusionDx could have written (may be replaced)."""
    if not path.is_file():
        return False
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096)
    return '"RiskAssessment"' in head or ('"Bundle"' in head and '"entry": []' in head)
