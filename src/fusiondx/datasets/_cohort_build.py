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
    for source, pid in zip(
        src.facts.loc[orphan, "source"], src.facts.loc[orphan, "patient_id"], strict=True
    ):
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
                facts.at[i, "value"] = convert_unit(
                    float(facts.at[i, "value"]), unit, feat.unit, what
                )
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
        why = (
            "no start time"
            if r["patient_id"] in known
            else f"its patient '{r['patient_id']}' is not in the data"
        )
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


_NAT = np.iinfo(np.int64).min


class _Group:
    """One patient's facts of one kind as arrays, so windows and "the latest" are numpy work."""

    def __init__(self, facts: pd.DataFrame, cols: dict[str, np.ndarray], pos: np.ndarray) -> None:
        self.facts, self.pos = facts, pos
        self.time, self.enc, self.code = cols["time"][pos], cols["enc"][pos], cols["code"][pos]
        self.value, self.text = cols["value"][pos], cols["text"][pos]

    def fact(self, i: int) -> pd.Series:
        return self.facts.iloc[int(self.pos[i])]

    def select(
        self, index: pd.Timestamp, enc: str, window: tuple[float, float], code: str | None
    ) -> np.ndarray:
        """Positions in the window (or linked to the encounter), latest first (ties: later row)."""
        lo = (index + window[0] * DAY).value
        hi = (index + window[1] * DAY).value
        dated = (self.time != _NAT) & (self.time >= lo) & (self.time <= hi)
        keep = dated | ((self.enc == enc) & (enc != ""))
        if code is not None:
            keep &= self.code == code
        sel = np.flatnonzero(keep)
        return sel[np.lexsort((sel, self.time[sel]))][::-1]


def _ns(times: pd.Series) -> np.ndarray:
    """UTC times as int64 nanoseconds, NaT as the smallest int64."""
    t = pd.to_datetime(times, utc=True)
    ns = t.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(t.notna().to_numpy(), ns, _NAT)


def _columns(facts: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "time": _ns(facts["time"]),
        "enc": facts["encounter_id"].fillna("").astype(str).to_numpy(dtype=object),
        "code": facts["code"].fillna("").astype(str).to_numpy(dtype=object),
        "value": facts["value"].to_numpy(dtype=float),
        "text": facts["text"].to_numpy(dtype=object),
    }


_EMPTY = _Group(fact_frame([]), _columns(fact_frame([])), np.zeros(0, dtype=np.int64))


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
    facts = src.facts.reset_index(drop=True)
    cols = _columns(facts)  # once for all: pandas on each small group costs milliseconds
    groups: dict[str, dict[str, _Group]] = {}
    for (pid, kind), pos in facts.groupby(["patient_id", "kind"], sort=False).indices.items():
        groups.setdefault(str(pid), {})[str(kind)] = _Group(facts, cols, pos)
    patients = src.patients.drop_duplicates("patient_id").set_index("patient_id")
    feats = [(feat, key(feat)) for feat in spec.features]
    parts = [
        (kind, part, window, key(part))
        for kind, part, window in (
            ("signal", spec.signal, spec.windows.signal),
            ("text", spec.text, spec.windows.text),
            ("image", spec.image, spec.windows.image),
        )
        if part is not None
    ]
    rows = []
    for c in cases.itertuples(index=False):
        g = groups.get(c.patient_id, {})
        idx, enc = c.index, c.encounter_id
        row: dict[str, Any] = {"case_id": c.case_id, "patient_id": c.patient_id}
        label = _label(g, idx, enc, spec, key, label_keys)
        if label is None:
            skipped.add(c.case_id, f"no {spec.label.name} value in the label window")
            continue
        row[spec.label.name] = label
        if "age" in spec.demographics:
            row["age"] = _age(patients.at[c.patient_id, "birth"], idx)
        if "sex" in spec.demographics:
            sex = patients.at[c.patient_id, "sex"]
            row["sex"] = sex if isinstance(sex, str) and sex else np.nan
        m = g.get("measure", _EMPTY)
        values, texts = m.value, m.text
        for feat, k in feats:
            row[feat.name] = np.nan
            for i in m.select(idx, enc, spec.windows.tabular, k) if k else ():
                v = texts[i] if feat.categorical else values[i]
                if (isinstance(v, str) and v != "") if feat.categorical else v == v:
                    row[feat.name] = v  # the latest value there is (NaN values do not count)
                    break
        for kind, part, window, k in parts:
            got = g.get(kind, _EMPTY)
            order = got.select(idx, enc, window, k)
            row[part.name] = _part(kind, got, order, c.case_id, decode, skipped)
        rows.append(row)
    return pd.DataFrame(rows)


def _part(
    kind: str,
    g: _Group,
    order: np.ndarray,
    case_id: str,
    decode: Callable[[str, pd.Series, str], str],
    skipped: Skipped,
) -> Any:
    """The latest usable fact of this kind: text as is, signal/image through ``decode``."""
    for i in order:
        if kind == "text":
            if isinstance(g.text[i], str) and g.text[i].strip():
                return g.text[i]
            continue
        fact = g.fact(int(i))
        try:
            return decode(kind, fact, case_id)
        except DataError as err:
            skipped.add(fact["source"], f"{kind} of case {case_id}: {err.what}")
    return np.nan


def _label(
    groups: dict[str, _Group],
    idx: pd.Timestamp,
    enc: str,
    spec: CohortSpec,
    key: Callable[[Any], str | None],
    label_keys: set[str],
) -> str | None:
    lab = spec.label
    if lab.observation is not None:
        g = groups.get("measure", _EMPTY)
        values = g.value
        sel = [
            i
            for i in g.select(idx, enc, lab.window, key(lab.observation))
            if values[i] == values[i]
        ]
        if not sel:
            return None
        return lab.positive if lab.observation.holds(float(values[sel[0]])) else lab.negative
    g = groups.get("condition", _EMPTY)
    hits = g.select(idx, enc, lab.window, None)
    return lab.positive if any(g.code[i] in label_keys for i in hits) else lab.negative


def _age(birth: Any, index: pd.Timestamp) -> float:
    """Whole years from birth to the index time (NaN without a birth date)."""
    if birth is None or pd.isna(birth):
        return np.nan
    b = pd.Timestamp(birth)
    i = index.tz_convert(None) if index.tzinfo else index
    b = b.tz_convert(None) if b.tzinfo else b
    return float(i.year - b.year - ((i.month, i.day) < (b.month, b.day)))
