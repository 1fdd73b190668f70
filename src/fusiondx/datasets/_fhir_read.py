"""FHIR R4B resources from bundles or bulk-export NDJSON -> validated dicts -> cohort facts.

Every resource is validated on its own with ``fhir.resources`` (its R4B models), so one bad
entry never hides a bundle: it goes to skipped.csv as ``Type/id`` with the first validation
error. The facts keep the raw JSON (validated), which is all the cohort builder needs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from fusiondx.datasets._adapter import Skipped
from fusiondx.datasets._cohort_build import Facts, fact_frame
from fusiondx.errors import DataError

UCUM = "http://unitsofmeasure.org"
USED = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "Media",
    "ImagingStudy",
    "Binary",
)
_SEX = {"male": "M", "female": "F", "other": "other"}
_VOID = {"entered-in-error", "cancelled", "refuted"}


def fhir_models() -> Any:
    """fhir.resources' R4B model lookup; a clear error when the extra is not installed."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise DataError(
            "Reading FHIR needs the fhir.resources package.",
            fix="pip install 'fusiondx[interop]'",
        ) from None
    return get_fhir_model_class


def _files(path: Path) -> list[Path]:
    suffixes = (".json", ".ndjson", ".json.gz", ".ndjson.gz")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("The FHIR path does not exist.", file=path, fix="pass a folder or a file")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    if not files:
        raise DataError(
            "This folder holds no FHIR files (*.json bundles or *.ndjson bulk exports).",
            file=path,
            fix="pass the folder of the bundles or of the bulk export",
        )
    return files


def _documents(file: Path, skipped: Skipped) -> Iterator[tuple[str, Any]]:
    opener: Any = gzip.open if file.name.endswith(".gz") else open
    try:
        with opener(file, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        skipped.add(file.name, f"file cannot be read ({exc})")
        return
    lines = text.splitlines() if ".ndjson" in file.name else [text]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file.name}:{n}" if len(lines) > 1 else file.name
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.add(where, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")


def read_resources(path: Path, skipped: Skipped) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every valid resource of the types FusionDx uses, and bundle fullUrl -> ``Type/id``."""
    model_of = fhir_models()
    from pydantic import ValidationError

    out: list[dict[str, Any]] = []
    full_urls: dict[str, str] = {}
    for file in _files(path):
        for where, doc in _documents(file, skipped):
            entries = [doc]
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                entries = []
                for e in doc.get("entry") or []:
                    res = e.get("resource") if isinstance(e, dict) else None
                    if isinstance(res, dict):
                        entries.append(res)
                        if e.get("fullUrl") and res.get("id"):
                            full_urls[e["fullUrl"]] = f"{res.get('resourceType')}/{res['id']}"
            for res in entries:
                if not isinstance(res, dict) or "resourceType" not in res:
                    skipped.add(where, "not a FHIR resource (no resourceType)")
                    continue
                rtype, rid = res["resourceType"], res.get("id")
                name = f"{rtype}/{rid}" if rid else f"{rtype} in {where}"
                if rtype not in USED:
                    continue  # other resource types are simply not part of a cohort
                if not rid:
                    skipped.add(name, "resource without an id")
                    continue
                try:
                    model_of(rtype).model_validate(res)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    loc = ".".join(str(p) for p in err["loc"])
                    skipped.add(name, f"invalid {rtype} ({where}): {loc}: {err['msg']}")
                    continue
                out.append(res)
    return out, full_urls


def _ref(obj: Any, full_urls: dict[str, str]) -> str:
    """``Type/id`` of a Reference (relative, absolute or a bundle's urn:uuid)."""
    ref = obj.get("reference", "") if isinstance(obj, dict) else ""
    if ref in full_urls:
        return full_urls[ref]
    return "/".join(ref.split("/")[-2:]) if "/" in ref else ref


def _id_of(ref: str, rtype: str) -> str:
    return ref.split("/", 1)[1] if ref.startswith(rtype + "/") else ""


def _codes(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [f"{c.get('system', '')}|{c.get('code', '')}" for c in concept.get("coding") or []]


def _time(res: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        head, _, tail = key.partition(".")
        v = res.get(head)
        if tail and isinstance(v, dict):
            v = v.get(tail.split(".")[0]) if "." not in tail else _time(v, tail)
        if isinstance(v, str) and v:
            return v
    return None


def attachment_text(att: dict[str, Any]) -> str | None:
    """A plain-text attachment's text (inline base64 ``data``); None for other content."""
    ctype = str(att.get("contentType") or "text/plain")
    if not ctype.startswith("text/") or not att.get("data"):
        return None
    try:
        return base64.b64decode(att["data"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def to_facts(
    resources: list[dict[str, Any]], full_urls: dict[str, str], skipped: Skipped
) -> tuple[Facts, dict[str, dict[str, Any]]]:
    """The cohort builder's tables, and Binary id -> resource (images stored inline)."""
    patients, encounters, facts = [], [], []
    binaries: dict[str, dict[str, Any]] = {}
    for res in resources:
        rtype, rid = res["resourceType"], res["id"]
        name = f"{rtype}/{rid}"
        if rtype == "Patient":
            patients.append(
                {
                    "patient_id": rid,
                    "birth": pd.to_datetime(res.get("birthDate"), errors="coerce"),
                    "sex": _SEX.get(str(res.get("gender"))),
                }
            )
            continue
        if rtype == "Binary":
            binaries[rid] = res
            continue
        if str(res.get("status")) in _VOID:
            skipped.add(name, f"status is {res['status']}")
            continue
        subj = _ref(res.get("subject") or res.get("patient"), full_urls)
        pid = _id_of(subj, "Patient")
        if not pid:
            skipped.add(name, "no Patient subject")
            continue
        enc_key = "context" if rtype == "DocumentReference" else "encounter"
        enc_obj = res.get(enc_key) or {}
        if rtype == "DocumentReference":
            enc_obj = ((enc_obj.get("encounter") or [{}])[0]) if isinstance(enc_obj, dict) else {}
        eid = _id_of(_ref(enc_obj, full_urls), "Encounter")
        base = {"source": name, "patient_id": pid, "encounter_id": eid}
        if rtype == "Encounter":
            encounters.append(
                {"encounter_id": rid, "patient_id": pid, "start": _time(res, "period.start")}
            )
        elif rtype == "Condition":
            ver = {c.get("code") for c in (res.get("verificationStatus") or {}).get("coding") or []}
            if ver & _VOID:
                skipped.add(name, f"verificationStatus is {', '.join(sorted(ver & _VOID))}")
                continue
            t = _time(res, "onsetDateTime", "onsetPeriod.start", "recordedDate")
            facts += [
                {**base, "kind": "condition", "time": t, "code": k} for k in _codes(res.get("code"))
            ]
        elif rtype == "Observation":
            facts += _observation(res, base, skipped)
        elif rtype in ("DiagnosticReport", "DocumentReference"):
            fact = _document(res, base, skipped)
            if fact:
                facts.append(fact)
        elif rtype in ("Media", "ImagingStudy"):
            t = _time(res, "createdDateTime", "createdPeriod.start", "issued", "started")
            codes = _codes(res.get("modality") if rtype == "Media" else None) or [""]
            facts.append({**base, "kind": "image", "time": t, "code": codes[0], "payload": res})
    frame_p = pd.DataFrame(patients, columns=["patient_id", "birth", "sex"])
    frame_e = pd.DataFrame(encounters, columns=["encounter_id", "patient_id", "start"])
    return Facts(frame_p, frame_e, fact_frame(facts)), binaries


def _observation(
    res: dict[str, Any], base: dict[str, Any], skipped: Skipped
) -> list[dict[str, Any]]:
    t = _time(res, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued")
    codes = _codes(res.get("code"))
    out = []
    if "valueSampledData" in res:
        return [
            {**base, "kind": "signal", "time": t, "code": k, "payload": [res["valueSampledData"]]}
            for k in codes
        ]
    leads = [c["valueSampledData"] for c in res.get("component") or [] if "valueSampledData" in c]
    if leads:  # one lead per component, as many ECG profiles store them
        return [{**base, "kind": "signal", "time": t, "code": k, "payload": leads} for k in codes]
    value = _value(res)
    if value is None and not res.get("component"):
        skipped.add(base["source"], "Observation without a value")
        return []
    if value is not None:
        out += [{**base, "kind": "measure", "time": t, "code": k, **value} for k in codes]
    for comp in res.get("component") or []:
        v = _value(comp)
        if v is not None:
            out += [
                {**base, "kind": "measure", "time": t, "code": k, **v}
                for k in _codes(comp.get("code"))
            ]
    return out


def _value(obj: dict[str, Any]) -> dict[str, Any] | None:
    if "valueQuantity" in obj:
        q = obj["valueQuantity"]
        ucum = q.get("system") in (UCUM, None) and q.get("code")  # a code without a system: UCUM
        unit = q.get("code") if ucum else q.get("unit")
        return {"value": q.get("value"), "unit": unit or ""}
    if "valueCodeableConcept" in obj:
        cc = obj["valueCodeableConcept"]
        coding = (cc.get("coding") or [{}])[0]
        return {"text": cc.get("text") or coding.get("display") or coding.get("code")}
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in obj:
            v = obj[key]
            return {
                "text": str(v).lower() if isinstance(v, bool) else str(v),
                "value": v if key == "valueInteger" else None,
            }
    return None


def _document(res: dict[str, Any], base: dict[str, Any], skipped: Skipped) -> dict[str, Any] | None:
    rtype = res["resourceType"]
    if rtype == "DiagnosticReport":
        t = _time(res, "effectiveDateTime", "effectivePeriod.start", "issued")
        texts = [res["conclusion"]] if res.get("conclusion") else []
        texts += [x for a in res.get("presentedForm") or [] if (x := attachment_text(a))]
        code = res.get("code")
    else:
        t = _time(res, "context.period.start", "date")
        texts = [
            x for c in res.get("content") or [] if (x := attachment_text(c.get("attachment") or {}))
        ]
        code = res.get("type")
    if not texts:
        skipped.add(
            base["source"],
            f"{rtype} without plain text (no conclusion or text/plain attachment data)",
        )
        return None
    codes = _codes(code) or [""]
    return {**base, "kind": "text", "time": t, "code": codes[0], "text": " ".join(texts[0].split())}
