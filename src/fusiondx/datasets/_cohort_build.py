"""From clinical facts to manifest rows: index times, windows, labels, last values, units.

`prepare fhir` and `prepare omop` both turn their source into the same three tables
(:class:`Facts`) and hand them here, so a cohort file means the same thing for both:

- ``patients``: ``patient_id``, ``birth`` (Timestamp or NaT), ``sex`` (``M``/``F`` or empty);
- ``encounters``: ``encounter_id``, ``patient_id``, ``start`` (Timestamp);
- ``facts``: one row per usable clinical fact: ``source`` (the resource/row id skipped.csv
  names), ``kind`` (``condition``, ``measure``, ``text``, ``signal``, ``image``),
  ``patient_id``, ``encounter_id`` (or empty), ``time`` (or NaT), ``code`` (a key the adapter
  builds from the cohort file: ``system|code`` or ``omop|concept_id``), ``value`` (number),
  ``text``, ``unit`` and ``payload`` (what the adapter's ``decode`` turns into a file).

A fact belongs to a case when its time lies in the modality's window around the case's index
time, or when it references the case's encounter (dated or not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import Skipped
from fusiondx.datasets._cohort_spec import CohortSpec
from fusiondx.errors import DataError

DAY = pd.Timedelta(days=1)


@dataclass
class Facts:
    patients: pd.DataFrame
    encounters: pd.DataFrame
    facts: pd.DataFrame


FACT_COLUMNS = (
    "source",
    "kind",
    "patient_id",
    "encounter_id",
    "time",
    "code",
    "value",
    "text",
    "unit",
    "payload",
)


def fact_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FACT_COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True, errors="coerce")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


@lru_cache(maxsize=1)
def _ucum() -> Any:
    from ucumvert import PintUcumRegistry  # a few seconds to build: only when units differ

    return PintUcumRegistry()


def convert_unit(value: float, unit: str, target: str, what: str) -> float:
    """``value`` in UCUM ``unit`` expressed in UCUM ``target``; DataError naming both units."""
    if unit == target:
        return value
    if not unit:
        raise DataError(f"{what}: the value has no unit, the cohort file asks for '{target}'")
    try:
        reg = _ucum()
        return float((value * reg.from_ucum(unit)).to(reg.from_ucum(target)).magnitude)
    except ImportError:
        raise DataError(
            f"{what}: unit '{unit}' differs from '{target}' and ucumvert is not installed",
            fix="pip install 'fusiondx[interop]'",
        ) from None
    except Exception as exc:  # ucumvert/pint raise many kinds: unknown unit, wrong dimension
        raise DataError(
            f"{what}: unit '{unit}' cannot be converted to '{target}' ({' '.join(str(exc).split())})"
        ) from None


def clean_facts(
    src: Facts, spec: CohortSpec, key: Callable[[Any], str | None], skipped: Skipped
) -> pd.DataFrame:
    """The facts of known patients, with measurement values converted to each feature's unit.

    Facts naming a patient the data does not hold, and values whose unit cannot be converted,
    are dropped, each in skipped.csv (with the code and the two units).
    """
    orphan = ~src.facts["patient_id"].isin(set(src.patients["patient_id"]))
    for source, pid in zip(src.facts.loc[orphan, "source"], src.facts.loc[orphan, "patient_id"], strict=True):
        skipped.add(source, f"references patient '{pid}', which is not in the data")
    facts = src.facts.loc[~orphan].reset_index(drop=True)
    drop = np.zeros(len(facts), dtype=bool)
    for feat in spec.features:
        k = key(feat)
        if k is None or feat.unit is None or feat.categorical:
            continue
        sel = np.flatnonzero(
            (facts["kind"] == "measure").to_numpy()
            & (facts["code"] == k).to_numpy()
            & facts["value"].notna().to_numpy()
        )
        for i in sel:
            unit = str(facts.at[i, "unit"] or "")
            what = f"{feat.name} ({k.replace('|', ' ')})"
            try:
                facts.at[i, "value"] = convert_unit(float(facts.at[i, "value"]), unit, feat.unit, what)
            except DataError as err:
                skipped.add(facts.at[i, "source"], err.what)
                drop[i] = True
    return facts.loc[~drop].reset_index(drop=True)


def index_times(src: Facts, spec: CohortSpec, skipped: Skipped) -> pd.DataFrame:
    """One row per case: ``case_id``, ``patient_id``, ``encounter_id``, ``index`` time."""
    known = set(src.patients["patient_id"])
    enc = src.encounters.copy()
    enc["start"] = pd.to_datetime(enc["start"], utc=True, errors="coerce")
    ok = enc["patient_id"].isin(known) & enc["start"].notna()
    for _, r in enc.loc[~ok].iterrows():
        why = "no start time" if r["patient_id"] in known else f"its patient '{r['patient_id']}' is not in the data"
        skipped.add(r["encounter_id"], f"encounter not usable: {why}")
    enc = enc.loc[ok]
    if spec.case == "encounter":
        return pd.DataFrame(
            {
                "case_id": enc["encounter_id"].astype(str),
                "patient_id": enc["patient_id"].astype(str),
                "encounter_id": enc["encounter_id"].astype(str),
                "index": enc["start"],
            }
        ).reset_index(drop=True)
    last_enc = enc.sort_values("start").groupby("patient_id").tail(1).set_index("patient_id")
    last_fact = src.facts.dropna(subset=["time"]).groupby("patient_id")["time"].max()
    rows = []
    for pid in src.patients["patient_id"]:
        if pid in last_enc.index:
            rows.append((pid, pid, last_enc.at[pid, "encounter_id"], last_enc.at[pid, "start"]))
        elif pid in last_fact.index:
            rows.append((pid, pid, "", last_fact[pid]))
        else:
            skipped.add(pid, "patient has no encounter and no dated resource to set the index time")
    return pd.DataFrame(rows, columns=["case_id", "patient_id", "encounter_id", "index"])


def _in_window(f: pd.DataFrame, index: pd.Timestamp, enc: str, window: tuple[float, float]) -> pd.DataFrame:
    t = f["time"]
    dated = t.notna() & (t >= index + window[0] * DAY) & (t <= index + window[1] * DAY)
    linked = (f["encounter_id"].astype(str) == enc) & (enc != "")
    return f.loc[dated | linked]


def _last(f: pd.DataFrame) -> pd.Series | None:
    if f.empty:
        return None
    return f.sort_values("time", na_position="first", kind="stable").iloc[-1]


def build_rows(
    src: Facts,
    spec: CohortSpec,
    key: Callable[[Any], str | None],
    label_keys: set[str],
    decode: Callable[[str, pd.Series, str], str],
    skipped: Skipped,
) -> pd.DataFrame:
    """The manifest: one row per case with label, demographics, features and file columns.

    ``key(feature_or_part)`` is the fact code the adapter uses for a cohort entry (None: any
    code); ``label_keys`` the condition codes that make a case positive; ``decode(kind, fact,
    case_id)`` writes or resolves the fact's file and returns its path under the output folder
    (DataError: the fact is skipped with the reason).
    """
    cases = index_times(src, spec, skipped)
    facts = src.facts
    by_patient = {p: g for p, g in facts.groupby("patient_id", sort=False)}
    patients = src.patients.set_index("patient_id")
    empty = facts.iloc[:0]
    rows = []
    for _, c in cases.iterrows():
        f = by_patient.get(c["patient_id"], empty)
        idx, enc = c["index"], c["encounter_id"]
        row: dict[str, Any] = {"case_id": c["case_id"], "patient_id": c["patient_id"]}
        label = _label(f, idx, enc, spec, key, label_keys)
        if label is None:
            skipped.add(c["case_id"], f"no {spec.label.name} value in the label window")
            continue
        row[spec.label.name] = label
        person = patients.loc[c["patient_id"]]
        if "age" in spec.demographics:
            row["age"] = _age(person["birth"], idx)
        if "sex" in spec.demographics:
            row["sex"] = person["sex"] if isinstance(person["sex"], str) and person["sex"] else np.nan
        tab = _in_window(f.loc[f["kind"] == "measure"], idx, enc, spec.windows.tabular)
        for feat in spec.features:
            k = key(feat)
            last = _last(tab.loc[tab["code"] == k]) if k else None
            if last is None:
                row[feat.name] = np.nan
            elif feat.categorical:
                row[feat.name] = last["text"] if isinstance(last["text"], str) else np.nan
            else:
                row[feat.name] = last["value"]
        for kind, part, window in (
            ("signal", spec.signal, spec.windows.signal),
            ("text", spec.text, spec.windows.text),
            ("image", spec.image, spec.windows.image),
        ):
            if part is None:
                continue
            got = _in_window(f.loc[f["kind"] == kind], idx, enc, window)
            k = key(part)
            if k is not None:
                got = got.loc[got["code"] == k]
            row[part.name] = _part(kind, got, c["case_id"], decode, skipped)
        rows.append(row)
    return pd.DataFrame(rows)


def _part(
    kind: str,
    got: pd.DataFrame,
    case_id: str,
    decode: Callable[[str, pd.Series, str], str],
    skipped: Skipped,
) -> Any:
    """The latest usable fact of this kind: text as is, signal/image through ``decode``."""
    for _, fact in got.sort_values("time", na_position="first", kind="stable").iloc[::-1].iterrows():
        if kind == "text":
            if isinstance(fact["text"], str) and fact["text"].strip():
                return fact["text"]
            continue
        try:
            return decode(kind, fact, case_id)
        except DataError as err:
            skipped.add(fact["source"], f"{kind} of case {case_id}: {err.what}")
    return np.nan


def _label(
    f: pd.DataFrame,
    idx: pd.Timestamp,
    enc: str,
    spec: CohortSpec,
    key: Callable[[Any], str | None],
    label_keys: set[str],
) -> str | None:
    lab = spec.label
    if lab.observation is not None:
        k = key(lab.observation)
        obs = _in_window(f.loc[(f["kind"] == "measure") & (f["code"] == k)], idx, enc, lab.window)
        last = _last(obs.dropna(subset=["value"]))
        if last is None:
            return None
        return lab.positive if lab.observation.holds(float(last["value"])) else lab.negative
    cond = _in_window(f.loc[f["kind"] == "condition"], idx, enc, lab.window)
    return lab.positive if cond["code"].isin(label_keys).any() else lab.negative


def _age(birth: Any, index: pd.Timestamp) -> float:
    """Whole years from birth to the index time (NaN without a birth date)."""
    if birth is None or pd.isna(birth):
        return np.nan
    b = pd.Timestamp(birth)
    i = index.tz_convert(None) if index.tzinfo else index
    b = b.tz_convert(None) if b.tzinfo else b
    return float(i.year - b.year - ((i.month, i.day) < (b.month, b.day)))
