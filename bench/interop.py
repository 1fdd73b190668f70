"""`prepare fhir` / `prepare omop`: time per case and round-trip fidelity (issue 20).

The built-in cohort at each size (``--cases``) is written as FHIR bundles (one per patient),
as bulk NDJSON, as OMOP CSV tables and as the same tables in SQLite
(:func:`fusiondx.interop_example`); each is prepared with the example cohort file and compared
with the cohort it came from: labels equal, largest lab difference after unit conversion,
reports equal, ECGs equal to the microvolt the FHIR data stores. Also the time of
``predict --format fhir``'s RiskAssessment writer (build + fhir.resources validation).

Example: python -m bench interop --cases 500,2000   (a few minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import WORK, md_table, save

LABS = ["crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", default="500,2000", help="comma-separated cohort sizes")
    p.add_argument("--no-save", action="store_true", help="print only; BENCHMARKS.md untouched")


def _ndjson(bundles: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for f in sorted(bundles.glob("*.json")):
        for e in json.loads(f.read_text())["entry"]:
            by_type.setdefault(e["resource"]["resourceType"], []).append(json.dumps(e["resource"]))
    for rtype, lines in by_type.items():
        (out / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")


def _sqlite(tables: Path, db: Path) -> None:
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        for t in tables.glob("*.csv"):
            pd.read_csv(t).to_sql(t.stem, conn, index=False)


def _fidelity(prepared: Path, truth: pd.DataFrame, ids: pd.Series, files: Path) -> dict[str, Any]:
    got = pd.read_csv(
        prepared / "manifest.csv", keep_default_na=False, na_values=[""], dtype={"case_id": str}
    )
    got.index = ids.loc[got["case_id"]].to_numpy() if ids is not None else got["case_id"]
    got = got.loc[truth.index]
    labs = max(float(np.nanmax(np.abs(got[c] - truth[c]))) for c in LABS)
    has_ecg = "ecg" in got and bool(got["ecg"].notna().any())  # OMOP has no waveform table
    ecg = 0.0
    if has_ecg:
        for cid in truth.index[truth["ecg"].notna()][:50]:  # a sample: each ECG is a file pair
            a = np.load(files / truth.at[cid, "ecg"])
            b = np.load(prepared / got.at[cid, "ecg"])
            ecg = max(ecg, float(np.abs(a - b).max()))
    return {
        "labels_equal": bool((got["label"] == truth["label"]).all()),
        "lab_max_diff": labs,
        "reports_equal": got["report"].fillna("").tolist() == truth["report"].fillna("").tolist(),
        "ecg_max_diff_mv": ecg if has_ecg else None,
    }


def _one(n: int) -> list[dict[str, Any]]:
    import fusiondx

    base = WORK / "interop" / f"n{n}"
    if base.exists():
        shutil.rmtree(base)
    t = time.perf_counter()
    ex = fusiondx.interop_example(base / "example", n_cases=n, seed=0)
    print(f"{n} cases written as FHIR and OMOP in {time.perf_counter() - t:.1f} s", flush=True)
    files = ex / "files"
    truth = pd.read_csv(files / "manifest.csv", keep_default_na=False, na_values=[""]).set_index(
        "case_id"
    )
    _ndjson(ex / "fhir", ex / "fhir_ndjson")
    _sqlite(ex / "omop", ex / "cdm.db")
    visits = pd.read_csv(ex / "omop" / "visit_occurrence.csv")
    omop_ids = pd.Series(
        visits["visit_source_value"].to_numpy(), index=visits["visit_occurrence_id"].astype(str)
    )
    fhir_ids = pd.Series(truth.index.to_numpy(), index=[c.replace("_", "-") for c in truth.index])
    cohort = str(ex / "cohort.yaml")
    runs = [
        ("FHIR bundles", "fhir", ex / "fhir", fhir_ids, {"image_root": str(files)}),
        ("FHIR bulk NDJSON", "fhir", ex / "fhir_ndjson", fhir_ids, {"image_root": str(files)}),
        ("OMOP CSV", "omop", ex / "omop", omop_ids, {}),
        ("OMOP SQLite", "omop", f"sqlite:///{ex / 'cdm.db'}", omop_ids, {}),
    ]
    rows = []
    for title, adapter, src, ids, extra in runs:
        out = base / f"prepared_{title.replace(' ', '_')}"
        t = time.perf_counter()
        res = fusiondx.prepare(adapter, src, out, cohort=cohort, **extra)
        sec = time.perf_counter() - t
        size = (
            sum(p.stat().st_size for p in Path(src).rglob("*"))
            if isinstance(src, Path)
            else (ex / "cdm.db").stat().st_size
        )
        rows.append(
            {
                "source": title,
                "cases": res.cases,
                "skipped": len(res.skipped),
                "input_mb": round(size / 2**20, 1),
                "seconds": round(sec, 1),
                "ms_per_case": round(1000 * sec / max(res.cases, 1), 1),
                **_fidelity(out, truth, ids, files),
            }
        )
        print(rows[-1], flush=True)
    rows.append(_writer(n))
    return rows


def _writer(n: int) -> dict[str, Any]:
    """The RiskAssessment writer alone, on made-up probabilities for n cases."""
    from types import SimpleNamespace

    from fusiondx.engine.fhir_out import risk_assessments, validate_resources

    frame = pd.DataFrame(
        {"case_id": [f"c{i}" for i in range(n)], "label_prob_disease": np.linspace(0, 1, n)}
    )
    task = SimpleNamespace(name="label", classes=("healthy", "disease"))
    mask = np.ones((n, 4), dtype=bool)
    t = time.perf_counter()
    res = risk_assessments(
        frame,
        [task],
        {f"c{i}": f"p{i}" for i in range(n)},
        ["a", "b", "c", "d"],
        mask,
        run_name="bench",
        version="0",
        sha256="0" * 64,
    )
    validate_resources(res)
    sec = time.perf_counter() - t
    return {
        "source": "predict --format fhir (write + validate)",
        "cases": n,
        "seconds": round(sec, 2),
        "ms_per_case": round(1000 * sec / n, 2),
    }


def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in str(args.cases).split(",") if s.strip()]
    rows = [r for n in sizes for r in _one(n)]
    table = md_table(
        rows,
        [
            ("source", "source"),
            ("cases", "cases"),
            ("skipped", "skipped"),
            ("input_mb", "input MB"),
            ("seconds", "s"),
            ("ms_per_case", "ms / case"),
            ("labels_equal", "labels equal"),
            ("lab_max_diff", "max lab diff"),
            ("reports_equal", "reports equal"),
            ("ecg_max_diff_mv", "max ECG diff (mV)"),
        ],
    )
    print(table)
    if not args.no_save:
        save("interop", {"rows": rows}, table, "Interoperability: prepare fhir / omop")
