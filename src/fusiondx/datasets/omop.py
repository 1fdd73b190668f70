"""OMOP CDM v5.4 tables (CSV / Parquet files, or a database URL) + a cohort file -> a manifest.

Tables read (column names case-insensitive): ``person`` (sex from ``gender_concept_id``, birth
from ``birth_datetime`` or year/month/day), ``visit_occurrence`` (a case per visit with
``case: encounter``; ``visit_start_datetime``/``_date`` is the index time),
``condition_occurrence`` (label by ``condition_concept_id``), ``measurement`` and
``observation`` (features by concept id: ``value_as_number`` in ``unit_source_value``, or
``value_as_string`` / ``value_source_value`` for categorical features) and ``note``
(``note_text``). A missing optional table is read as empty, with a note. Windows, labels and
units work as for FHIR (:mod:`fusiondx.datasets._cohort_build`); the core CDM has no image or
waveform table, so OMOP cohorts carry tabular features and text.

Example:
    >>> prepare_omop("omop/", "prepared/", cohort="cohort.yaml")  # doctest: +SKIP
    >>> prepare_omop("sqlite:///cdm.db", "prepared/", cohort="cohort.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import PreparedDataset, Skipped, output_paths, read_table
from fusiondx.datasets._cohort_build import Facts, build_rows, clean_facts, fact_frame
from fusiondx.datasets._cohort_output import write_cohort
from fusiondx.datasets._cohort_spec import load_cohort
from fusiondx.errors import DataError
from fusiondx.registry import register_adapter

ABOUT = ["A cohort read from OMOP CDM v5.4 tables."]
TABLES = (
    "person",
    "visit_occurrence",
    "condition_occurrence",
    "measurement",
    "observation",
    "note",
)
SEX = {8507: "M", 8532: "F"}
# Common OMOP unit concepts, for rows without unit_source_value (the UCUM code of the concept).
UNIT_CONCEPTS = {
    8840: "mg/dL",
    8751: "mg/L",
    8845: "pg/mL",
    8842: "ng/mL",
    8848: "10*3/uL",
    8554: "%",
    8541: "/min",
    8753: "mmol/L",
    8876: "mm[Hg]",
}


@register_adapter(
    "omop",
    aliases=("omop-cdm", "omop_cdm"),
    example="fhir_example/omop --cohort fhir_example/cohort.yaml --out prepared/omop",
)
def prepare_omop(
    path: str | Path,
    out: str | Path,
    *,
    cohort: str | None = None,
    schema: str | None = None,
    progress: bool = False,
) -> PreparedDataset:
    """OMOP CDM v5.4 (CSV/Parquet folder or database URL) + a cohort file: labels, features, notes.

    Args:
        path: a folder of ``<table>.csv`` / ``.csv.gz`` / ``.parquet`` files, or a database URL
            that SQLAlchemy opens (e.g. ``sqlite:///cdm.db``, ``postgresql://host/db``).
        out: output folder, or the manifest's path (``.csv``).
        cohort: the cohort file (YAML): what a case is, the label, windows, concept ids
            (docs/interoperability.md).
        schema: the database schema holding the CDM tables (database URLs only).
        progress: accepted for symmetry with the other adapters.
    """
    if cohort is None:
        raise DataError(
            "prepare omop needs a cohort file.",
            fix="pass --cohort cohort.yaml (see docs/interoperability.md)",
        )
    spec = load_cohort(cohort)
    where = str(path)
    is_url = "://" in where
    folder = None if is_url else Path(path).expanduser().resolve()
    paths = output_paths(out, "omop", inputs=folder)
    notes: list[str] = []
    tables = _read_url(where, schema, notes) if is_url else _read_folder(folder, notes)  # type: ignore[arg-type]
    skipped = Skipped()
    src = to_facts(tables, skipped)

    def key(item: Any) -> str | None:
        concept = getattr(item, "concept_id", None)
        return f"omop|{concept}" if concept is not None else None

    label_keys = {f"omop|{c}" for c in spec.label.concept_ids}
    src.facts = clean_facts(src, spec, key, skipped)

    def decode(kind: str, fact: pd.Series, case_id: str) -> str:
        raise DataError(f"OMOP has no {kind} files")

    frame = build_rows(src, spec, key, label_keys, decode, skipped)
    return write_cohort("omop", frame, spec, paths, skipped, signal=None, about=ABOUT, notes=notes)


def _read_folder(folder: Path, notes: list[str]) -> dict[str, pd.DataFrame]:
    if not folder.is_dir():
        raise DataError(
            "The OMOP folder does not exist.",
            file=folder,
            fix="pass the folder of the CDM tables, or a database URL",
        )
    out = {}
    for name in TABLES:
        found = [
            folder / f"{name}{ext}"
            for ext in (".csv", ".csv.gz", ".parquet")
            if (folder / f"{name}{ext}").is_file()
        ]
        if not found:
            out[name] = pd.DataFrame()
            continue
        file = found[0]
        if file.suffix == ".parquet":
            try:
                frame = pd.read_parquet(file)
            except (OSError, ValueError, ImportError) as exc:
                raise DataError(
                    f"The table cannot be read ({exc}).", file=file, fix="check the Parquet file"
                ) from None
        else:
            frame = read_table(file, low_memory=False)
        out[name] = frame.rename(columns=str.lower)
    _require(out, folder, notes)
    return out


def _read_url(url: str, schema: str | None, notes: list[str]) -> dict[str, pd.DataFrame]:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        present = {t.lower(): t for t in sa.inspect(engine).get_table_names(schema=schema)}
        out = {}
        with engine.connect() as conn:
            for name in TABLES:
                if name not in present:
                    out[name] = pd.DataFrame()
                    continue
                table = sa.Table(present[name], sa.MetaData(), schema=schema, autoload_with=conn)
                out[name] = pd.read_sql(sa.select(table), conn).rename(columns=str.lower)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise DataError(
            f"The database cannot be read ({' '.join(str(exc).split())[:300]}).",
            file=url.split("@")[-1],  # never echo a password
            fix="check the URL (dialect://user@host/db), the driver and --schema",
        ) from None
    _require(out, Path(url.split("@")[-1]), notes)
    return out


def _require(tables: dict[str, pd.DataFrame], where: Path, notes: list[str]) -> None:
    if tables["person"].empty or "person_id" not in tables["person"]:
        raise DataError(
            "There is no person table (or it has no person_id column).",
            file=where,
            fix="OMOP CDM v5.4 tables are needed: person, visit_occurrence, measurement, ...",
        )
    absent = [n for n in TABLES if tables[n].empty]
    if absent:
        notes.append(f"table(s) {', '.join(absent)} absent or empty; read as empty")


def _col(frame: pd.DataFrame, *names: str) -> pd.Series:
    for n in names:
        if n in frame:
            return frame[n]
    return pd.Series([np.nan] * len(frame), index=frame.index, dtype=object)


def _ids(frame: pd.DataFrame, column: str, table: str, skipped: Skipped) -> pd.Series:
    """Whole-number ids as text; rows without one are skipped (``table:row``)."""
    raw = pd.to_numeric(_col(frame, column), errors="coerce")
    bad = raw.isna() | (raw != raw.round())
    for i in np.flatnonzero(bad.to_numpy()):
        skipped.add(f"{table}:{i + 2}", f"{column} is missing or not a whole number")
    return raw.where(~bad).map(lambda v: "" if pd.isna(v) else str(int(v)))


def _time(frame: pd.DataFrame, prefix: str) -> pd.Series:
    t = pd.to_datetime(_col(frame, f"{prefix}_datetime"), utc=True, errors="coerce")
    d = pd.to_datetime(_col(frame, f"{prefix}_date"), utc=True, errors="coerce")
    return t.fillna(d)


def to_facts(tables: dict[str, pd.DataFrame], skipped: Skipped) -> Facts:
    person = tables["person"]
    pid = _ids(person, "person_id", "person", skipped)
    birth = pd.to_datetime(_col(person, "birth_datetime"), errors="coerce", utc=True).dt.tz_convert(
        None
    )
    parts = pd.DataFrame(
        {
            "year": pd.to_numeric(_col(person, "year_of_birth"), errors="coerce"),
            "month": pd.to_numeric(_col(person, "month_of_birth"), errors="coerce").fillna(1),
            "day": pd.to_numeric(_col(person, "day_of_birth"), errors="coerce").fillna(1),
        }
    )
    birth = birth.fillna(pd.to_datetime(parts, errors="coerce"))
    gender = pd.to_numeric(_col(person, "gender_concept_id"), errors="coerce")
    patients = pd.DataFrame({"patient_id": pid, "birth": birth, "sex": gender.map(SEX)}).loc[
        pid != ""
    ]
    visits = tables["visit_occurrence"]
    enc = pd.DataFrame(
        {
            "encounter_id": _ids(visits, "visit_occurrence_id", "visit_occurrence", skipped),
            "patient_id": _ids(visits, "person_id", "visit_occurrence", skipped),
            "start": _time(visits, "visit_start"),
        }
    )
    enc = enc.loc[(enc["encounter_id"] != "") & (enc["patient_id"] != "")]
    frames = [
        _facts(
            tables["condition_occurrence"],
            "condition_occurrence",
            "condition",
            "condition_concept_id",
            "condition_start",
            skipped,
        ),
        _facts(
            tables["measurement"],
            "measurement",
            "measure",
            "measurement_concept_id",
            "measurement",
            skipped,
        ),
        _facts(
            tables["observation"],
            "observation",
            "measure",
            "observation_concept_id",
            "observation",
            skipped,
        ),
        _facts(tables["note"], "note", "text", None, "note", skipped),
    ]
    facts = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else fact_frame([])
    )
    return Facts(patients.reset_index(drop=True), enc.reset_index(drop=True), facts)


def _facts(
    frame: pd.DataFrame, table: str, kind: str, concept: str | None, time: str, skipped: Skipped
) -> pd.DataFrame:
    if frame.empty:
        return fact_frame([])
    pid = _ids(frame, "person_id", table, skipped)
    codes = (
        pd.to_numeric(_col(frame, concept), errors="coerce")
        if concept
        else pd.Series(0, index=frame.index)
    )
    unit = _col(frame, "unit_source_value").astype(object)
    unit_concept = pd.to_numeric(_col(frame, "unit_concept_id"), errors="coerce").map(UNIT_CONCEPTS)
    unit = unit.where(unit.notna() & (unit.astype(str).str.strip() != ""), unit_concept).fillna("")
    text = _col(frame, "note_text" if kind == "text" else "value_as_string")
    if kind != "text":
        text = text.fillna(_col(frame, "value_source_value"))
    visit = pd.to_numeric(_col(frame, "visit_occurrence_id"), errors="coerce")
    out = pd.DataFrame(
        {
            "source": [f"{table}:{i + 2}" for i in range(len(frame))],
            "kind": kind,
            "patient_id": pid.to_numpy(),
            "encounter_id": visit.map(lambda v: "" if pd.isna(v) else str(int(v))).to_numpy(),
            "time": _time(frame, time).to_numpy(),
            "code": codes.map(lambda v: "" if pd.isna(v) else f"omop|{int(v)}").to_numpy(),
            "value": pd.to_numeric(_col(frame, "value_as_number"), errors="coerce").to_numpy(),
            "text": text.where(text.notna(), None).to_numpy(),
            "unit": unit.astype(str).to_numpy(),
            "payload": None,
        }
    )
    out["time"] = pd.to_datetime(out["time"], utc=True)
    return out.loc[out["patient_id"] != ""]
