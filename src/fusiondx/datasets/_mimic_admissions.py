"""MIMIC-IV admissions -> one manifest row per usable admission, with its earlier ICD codes.

Reads the ``hosp/admissions`` and ``hosp/patients`` rows: age at admission, the categorical
admission data, hours in the emergency department, earlier admissions and both labels (an
admission that cannot be used goes to ``skipped.csv`` with the reason); then the ICD codes of
the patient's earlier admissions and, when ``icu/`` is there, whether an ICU stay began in the
observation window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import Skipped

LABELS = {"death": ("survived", "died"), "long_stay": ("short", "long")}
CATEGORICAL = [
    "gender",
    "admission_type",
    "admission_location",
    "insurance",
    "language",
    "marital_status",
    "race",
]
LONG_STAY_DAYS = 7.0


def admission_cases(adm: pd.DataFrame, pat: pd.DataFrame, skipped: Skipped) -> pd.DataFrame:
    """One row per usable admission; the others go to ``skipped`` with the reason."""
    out, seen = [], set()
    starts = adm.dropna(subset=["subject_id", "admittime"]).groupby("subject_id")["admittime"]
    for r in adm.to_dict("records"):
        hadm = r["hadm_id"]
        if hadm != hadm or hadm in seen:
            skipped.add(hadm, "empty or repeated hadm_id")
            continue
        seen.add(hadm)
        reason = _reject(r, pat)
        if reason:
            skipped.add(int(hadm), reason)
            continue
        out.append(_case(r, pat.loc[r["subject_id"]], starts.get_group(r["subject_id"])))
    return pd.DataFrame(out)


def _reject(r: dict[str, Any], pat: pd.DataFrame) -> str | None:
    if pd.isna(r["admittime"]) or pd.isna(r["dischtime"]):
        return "admittime or dischtime is empty or not a time"
    if r["subject_id"] not in pat.index:
        return "no row in hosp/patients (age and gender unknown)"
    if pd.to_numeric(r["hospital_expire_flag"], errors="coerce") not in (0, 1):
        return f"hospital_expire_flag is '{r['hospital_expire_flag']}', not 0 or 1"
    return None


def _case(r: dict[str, Any], p: pd.Series, starts: pd.Series) -> dict[str, Any]:
    start, stop = r["admittime"], r["dischtime"]
    los = (stop - start).total_seconds() / 86400
    ed = r.get("edouttime", pd.NaT) - r.get("edregtime", pd.NaT)
    died = int(pd.to_numeric(r["hospital_expire_flag"]))
    return {
        "hadm_id": int(r["hadm_id"]),
        "subject_id": int(r["subject_id"]),
        "admittime": start,
        "end": stop if pd.isna(r.get("deathtime")) else min(stop, r["deathtime"]),
        "age": float(p["anchor_age"]) + (start.year - float(p["anchor_year"])),
        "gender": p["gender"],
        **{c: r.get(c, np.nan) for c in CATEGORICAL if c != "gender"},
        "ed_hours": round(ed.total_seconds() / 3600, 2)
        if pd.notna(ed) and ed >= pd.Timedelta(0)
        else np.nan,
        "prior_admissions": int((starts < start).sum()),
        "death": LABELS["death"][died],
        "long_stay": LABELS["long_stay"][int(los > LONG_STAY_DAYS)],
        "los_days": round(los, 3),
    }


def earlier_codes(adm: pd.DataFrame, dx: pd.DataFrame, cases: pd.DataFrame) -> list[str]:
    """Codes of earlier admissions (discharged before this admittime), most recent first."""
    dx = dx.dropna(subset=["hadm_id", "icd_code"]).sort_values(["hadm_id", "seq_num"])
    tokens = dx.assign(tok="icd" + dx["icd_version"].astype(str) + "_" + dx["icd_code"].str.strip())
    by_hadm = tokens.groupby("hadm_id")["tok"].apply(list).to_dict()
    earlier = adm.dropna(subset=["admittime", "dischtime"]).sort_values(
        "admittime", ascending=False
    )
    by_subject = {s: g for s, g in earlier.groupby("subject_id")}
    out = []
    for subject, start in zip(cases["subject_id"], cases["admittime"], strict=True):
        g = by_subject.get(subject)
        before = g.loc[g["dischtime"] <= start, "hadm_id"] if g is not None else []
        codes = [t for h in before for t in by_hadm.get(h, [])]
        out.append(" ".join(dict.fromkeys(codes)) or "none")
    return out


def icu_in_window(icu: pd.DataFrame, cases: pd.DataFrame, hours: int) -> np.ndarray:
    icu = icu.assign(intime=pd.to_datetime(icu["intime"], errors="coerce"))
    first = icu.groupby("hadm_id")["intime"].min()
    start = cases["hadm_id"].map(first)
    return ((start - cases["admittime"]) < pd.Timedelta(hours=hours)).astype(int).to_numpy()
