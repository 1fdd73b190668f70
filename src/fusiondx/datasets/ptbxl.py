"""PTB-XL (Wagner et al., 2020) in its PhysioNet layout -> a FusionDx manifest and config.

Layout read: ``ptbxl_database.csv`` (one row per ECG), ``scp_statements.csv`` (what each SCP-ECG
statement means) and ``records100/`` or ``records500/`` (WFDB records named in ``filename_lr``
/ ``filename_hr``). One case per ECG (``case_id`` = ``ecg_id``), grouped by ``patient_id``:

- ``ecg``: the record's ``.hea`` header, relative to the dataset folder (``data.root``);
- tabular: age, sex, height, weight (empty where PTB-XL has no value), recording device and
  0/1 flags for the noise/artefact columns (an empty cell there means "none noted", not missing);
- ``report``: the cardiologist's free-text report (mostly German);
- labels: one 0/1 column per class, plus ``labels`` (``;``-joined, ``none`` when empty);
- ``split`` from ``strat_fold``: 1-8 train, 9 val, 10 test (the benchmark convention).

Example:
    >>> prepare_ptbxl("../shared/data/ptbxl500", "../prepared/ptbxl")  # doctest: +SKIP
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import (
    PreparedDataset,
    Skipped,
    finish,
    multilabel_counts,
    multilabel_task,
    output_paths,
    read_table,
    require_columns,
    require_file,
    track,
    write_config,
    write_manifest,
)
from fusiondx.errors import ConfigError, DataError
from fusiondx.registry import register_adapter

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
FLAGS = (
    "baseline_drift",
    "static_noise",
    "burst_noise",
    "electrodes_problems",
    "extra_beats",
    "pacemaker",
)
LABEL_SETS = ("superclass", "rhythm", "form")
LAYOUT = "ptbxl_database.csv, scp_statements.csv and records100/ (or records500/)"
ABOUT = [
    "PTB-XL, a large publicly available electrocardiography dataset (PhysioNet), CC BY 4.0.",
    "Cite: Wagner P, Strodthoff N, Bousseljot R-D, et al. PTB-XL, a large publicly available "
    "electrocardiography dataset. Scientific Data 7, 154 (2020); and Goldberger et al., PhysioBank, "
    "PhysioToolkit, and PhysioNet, Circulation 101(23) (2000).",
]
# PTB-XL stores ages above 89 as 300 (de-identification); they become 90, i.e. "90 or older".
_AGE_CAP = 90.0


@register_adapter(
    "ptbxl",
    aliases=("ptb-xl", "ptb_xl"),
    example="../shared/data/ptbxl500 --out ../prepared/ptbxl --labels superclass",
)
def prepare_ptbxl(
    root: str | Path,
    out: str | Path,
    *,
    labels: str = "superclass",
    records: int = 100,
    min_likelihood: float = 0.0,
    min_count: int = 10,
    drop_unlabelled: bool = False,
    report: bool = True,
    progress: bool = False,
) -> PreparedDataset:
    """PTB-XL 12-lead ECGs + metadata + report; 5 diagnostic superclasses (or rhythm/form).

    Writes the manifest, ``ptbxl.yaml`` and ``skipped.csv`` into ``out``.

    Args:
        root: the PTB-XL folder (holds ptbxl_database.csv).
        out: output folder, or the manifest's path (``.csv``).
        labels: ``superclass`` (NORM, MI, STTC, CD, HYP via ``diagnostic_class``), ``rhythm``
            or ``form`` (one class per statement with at least ``min_count`` records).
        records: 100 or 500 Hz records.
        min_likelihood: a statement counts when its likelihood is at least this. The default 0
            counts every listed statement, as the PTB-XL benchmark code does (likelihood 0
            means "not given" in PTB-XL, not "absent").
        min_count: rhythm/form statements with fewer records are left out (with a note).
        drop_unlabelled: skip records with no class (listed in skipped.csv) instead of keeping
            them with an all-zero label row.
        report: include the report text modality (see the leakage note in docs/real-data.md).
        progress: show a progress bar while every record is checked.
    """
    if labels not in LABEL_SETS:
        raise ConfigError(
            f"Unknown PTB-XL label set '{labels}'.", fix="use superclass, rhythm or form"
        )
    if records not in (100, 500):
        raise ConfigError(
            f"records must be 100 or 500, got {records}.", fix="use --records 100 or 500"
        )
    root = Path(root).expanduser().resolve()
    db_path = require_file(root / "ptbxl_database.csv", "PTB-XL", LAYOUT)
    scp_path = require_file(root / "scp_statements.csv", "PTB-XL", LAYOUT)
    rec_dir = root / f"records{records}"
    if not rec_dir.is_dir():
        other = 500 if records == 100 else 100
        there = (root / f"records{other}").is_dir()
        hint = f" or use --records {other} (records{other}/ is there)" if there else ""
        raise DataError(
            f"This PTB-XL folder has no records{records}/ folder.",
            file=rec_dir,
            fix=f"download the {records} Hz records{hint}",
        )
    paths = output_paths(out, "ptbxl", inputs=root)
    file_col = "filename_lr" if records == 100 else "filename_hr"
    db = read_table(db_path, dtype=str, keep_default_na=False, na_values=[""])
    require_columns(
        db,
        ["ecg_id", "patient_id", "scp_codes", "strat_fold", file_col],
        db_path,
        "use the ptbxl_database.csv of the PhysioNet download",
    )
    scp = read_table(scp_path, index_col=0)
    require_columns(
        scp,
        ["diagnostic", "diagnostic_class", "rhythm", "form"],
        scp_path,
        "use the scp_statements.csv of the PhysioNet download",
    )
    statement_class = _statement_classes(scp, labels)

    skipped, rows = Skipped(), []
    seen: set[str] = set()
    for _, r in track(db.iterrows(), len(db), "checking ECG records", progress):
        row = _row(r, root, file_col, records, statement_class, min_likelihood, skipped, seen)
        if row is not None:
            rows.append(row)
    if not rows:
        raise DataError(
            "No PTB-XL record could be used; see the reasons in skipped.csv.",
            file=db_path,
            fix="check the records folder against ptbxl_database.csv",
        )
    frame = pd.DataFrame(rows)
    notes: list[str] = []
    classes = _choose_classes(frame, labels, min_count, notes)
    y = np.array([[int(c in s) for c in classes] for s in frame.pop("_classes")], dtype=int)
    for k, c in enumerate(classes):
        frame[c] = y[:, k]
    frame["labels"] = [
        ";".join(c for c, v in zip(classes, row, strict=True) if v) or "none" for row in y
    ]
    empty = ~y.any(axis=1)
    if empty.any():
        if drop_unlabelled:
            for cid in frame.loc[empty, "case_id"]:
                skipped.add(cid, f"no {labels} statement among its scp_codes")
            frame = frame.loc[~empty].reset_index(drop=True)
        else:
            notes.append(
                f"{int(empty.sum())} record(s) have no {labels} label; they are kept with an "
                "all-zero label row (the benchmark code drops them; use --drop-unlabelled)"
            )
    _note_patients(frame, notes)
    write_manifest(frame, paths.manifest)
    write_config(
        _config(paths.manifest.name, root, classes, labels, records, report),
        paths.config,
        _header(labels, records),
    )
    counts = multilabel_counts(frame, list(classes))
    return finish("ptbxl", paths, frame, skipped, "ecg_id", counts, notes, ABOUT)


def _statement_classes(scp: pd.DataFrame, labels: str) -> dict[str, str]:
    """SCP code -> the class it counts for."""
    if labels == "superclass":
        diag = scp[(scp["diagnostic"] == 1) & scp["diagnostic_class"].notna()]
        return {str(k): str(v) for k, v in diag["diagnostic_class"].items()}
    chosen = scp[scp[labels] == 1]
    return {str(k): str(k) for k in chosen.index}


def _row(
    r: pd.Series,
    root: Path,
    file_col: str,
    rate: int,
    statement_class: dict[str, str],
    min_likelihood: float,
    skipped: Skipped,
    seen: set[str],
) -> dict[str, Any] | None:
    from fusiondx.data.preprocessors.signal import preprocess_signal
    from fusiondx.data.readers import read_signal

    rid = str(r["ecg_id"]).strip() if isinstance(r["ecg_id"], str) else ""
    rid = rid[:-2] if rid.endswith(".0") else rid
    if not rid or rid in seen:
        skipped.add(rid or "(empty)", "empty or repeated ecg_id")
        return None
    codes: Any  # a dict of statement -> likelihood in a well-formed record
    try:
        codes = ast.literal_eval(r["scp_codes"]) if isinstance(r["scp_codes"], str) else None
    except (ValueError, SyntaxError):
        codes = None
    try:
        classes = {
            statement_class[k]
            for k, v in codes.items()
            if k in statement_class and float(v) >= min_likelihood
        }
    except (AttributeError, TypeError, ValueError):
        classes = None
    if classes is None:
        skipped.add(rid, f"scp_codes is not a {{code: likelihood}} dictionary: {r['scp_codes']!r}")
        return None
    fold = pd.to_numeric(r["strat_fold"], errors="coerce")
    if not (fold == fold and 1 <= fold <= 10):
        skipped.add(rid, f"strat_fold is '{r['strat_fold']}', not 1-10")
        return None
    patient = pd.to_numeric(r["patient_id"], errors="coerce")
    if patient != patient:
        skipped.add(rid, "no patient_id")
        return None
    rel = f"{str(r[file_col]).strip()}.hea" if isinstance(r[file_col], str) else ""
    try:
        if not rel:
            raise DataError(f"{file_col} is empty")
        rec = read_signal(root / rel)
        preprocess_signal(rec, rate=rate, length=10 * rate, leads=12, normalize="none")
    except DataError as err:
        skipped.add(rid, f"ECG record {rel or '(none)'}: {err.what}")
        return None
    seen.add(rid)
    return {
        "case_id": rid,
        "patient_id": str(int(patient)),
        "split": "train" if fold <= 8 else ("val" if fold == 9 else "test"),
        "strat_fold": int(fold),
        "ecg": rel,
        "report": _text(r.get("report")),
        "age": _number(r.get("age"), cap=_AGE_CAP),
        "sex": {"0": "male", "1": "female"}.get(str(r.get("sex", "")).replace(".0", ""), np.nan),
        "height": _number(r.get("height"), positive=True),
        "weight": _number(r.get("weight"), positive=True),
        "device": _text(r.get("device")),
        **{f: int(isinstance(r.get(f), str) and bool(r.get(f).strip(" ,"))) for f in FLAGS},
        "_classes": classes,
    }


def _number(value: Any, *, cap: float | None = None, positive: bool = False) -> float:
    v = pd.to_numeric(value, errors="coerce")
    if v != v or (positive and v <= 0):
        return np.nan
    return float(min(v, cap)) if cap is not None else float(v)


def _text(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else np.nan


def _choose_classes(
    frame: pd.DataFrame, labels: str, min_count: int, notes: list[str]
) -> tuple[str, ...]:
    sets = frame["_classes"]
    train = (frame["split"] == "train").to_numpy()
    count = pd.Series([c for s in sets for c in s]).value_counts()
    if labels == "superclass":
        classes = SUPERCLASSES
    else:
        classes = tuple(sorted(c for c, n in count.items() if n >= min_count))
        dropped = sorted(c for c, n in count.items() if n < min_count)
        if dropped:
            notes.append(
                f"{labels} statements with fewer than {min_count} records left out: "
                + ", ".join(dropped)
            )
        if not classes:
            raise DataError(
                f"No {labels} statement has {min_count} or more records.",
                fix="lower --min-count, or use --labels superclass",
            )
    for s_name, sel in (
        ("train", train),
        ("val", frame["split"].eq("val").to_numpy()),
        ("test", frame["split"].eq("test").to_numpy()),
    ):
        absent = [c for c in classes if not any(c in s for s in sets[sel])]
        if absent:
            stop = (
                " (fit will stop: every class needs training positives)"
                if s_name == "train"
                else ""
            )
            notes.append(f"the {s_name} split has no record of {', '.join(absent)}{stop}")
    return classes


def _note_patients(frame: pd.DataFrame, notes: list[str]) -> None:
    crossing = frame.groupby("patient_id")["split"].nunique()
    if (crossing > 1).any():
        notes.append(
            f"{int((crossing > 1).sum())} patient(s) have ECGs in several strat_fold splits; "
            "fit will refuse this split (check_splits) - drop patient_column to accept it"
        )


def _config(
    manifest: str, root: Path, classes: tuple[str, ...], labels: str, rate: int, report: bool
) -> dict[str, Any]:
    meta = ["age", "sex", "height", "weight", "device", *FLAGS]
    modalities: list[dict[str, Any]] = [
        {
            "name": "ecg",
            "kind": "signal",
            "column": "ecg",
            "preprocessing": {"rate": rate, "length": 10 * rate, "leads": 12},
            "encoder": {"name": "cnn1d"},
        },
        {
            "name": "meta",
            "kind": "tabular",
            "columns": meta,
            "categorical": ["sex", "device"],
            "encoder": {"name": "mlp"},
        },
    ]
    if report:
        modalities.append(
            {
                "name": "report",
                "kind": "text",
                "column": "report",
                "preprocessing": {"tokenizer": "wordpiece", "vocab_size": 1000, "max_length": 48},
                "encoder": {"name": "text_transformer"},
            }
        )
    strategies = ["concat", "attention", "gated", "late_average"]
    return {
        "name": f"ptbxl_{labels}",
        "seed": 0,
        "output_dir": "runs",
        "data": {
            "manifest": manifest,
            "root": str(root),
            "id_column": "case_id",
            "patient_column": "patient_id",
            "split": {"column": "split"},
            # The recording device and the signal-quality notes: no disease should follow them.
            "metadata_columns": [
                "device",
                "baseline_drift",
                "static_noise",
                "burst_noise",
                "electrodes_problems",
            ],
        },
        "modalities": modalities,
        "fusion": {"name": "concat", "dim": 64},
        "tasks": [multilabel_task(labels, list(classes))],
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "lr": 0.001,
            "early_stopping": {"monitor": "auroc", "patience": 4},
        },
        "study": {"strategies": strategies, "seeds": 3, "jobs": 2},
    }


def _header(labels: str, rate: int) -> list[str]:
    return [
        f"PTB-XL, {labels} labels, {rate} Hz; written by `fusiondx prepare ptbxl`.",
        "Split: strat_fold 1-8 train, 9 val, 10 test. Data: CC BY 4.0, cite Wagner et al. 2020.",
        "Caveat: the report text is what the SCP statements were derived from (label leakage).",
        "Next: fusiondx validate <this file>; fusiondx fit <this file>; fusiondx study <this file>",
    ]
