"""MIMIC-IV (demo or full, v2.x) in its PhysioNet layout -> a FusionDx manifest and config.

Layout read: ``hosp/{admissions,patients,labevents,d_labitems,diagnoses_icd}.csv[.gz]`` and,
when present, ``icu/icustays``. One case per admission (``case_id`` = ``hadm_id``), grouped by
patient (``patient_id`` = ``subject_id``; the rows are built in
:mod:`fusiondx.datasets._mimic_admissions`); everything is known ``hours`` after admission:

- ``labs``: the lab results of the first ``hours`` as a regular multivariate series written to
  ``labs/<hadm_id>.npy`` (see :mod:`fusiondx.datasets._mimic_labs` and ``labs.csv``); empty
  when the admission has no lab in the window (the modality is then missing);
- tabular: age at admission, gender, admission type and location, insurance, language, marital
  status, race, hours in the emergency department, number of earlier admissions, ICU stay begun
  in the window (when ``icu/`` is there);
- ``history``: ICD codes of the patient's earlier admissions (discharged before this one
  began), most recent admission first, as ``icd9_4019 icd10_I10 ...``; ``none`` when there is
  none. The admission's own codes are never used: they are coded at discharge;
- labels: ``death`` (hospital_expire_flag: died / survived) and ``long_stay`` (long when the stay
  exceeds 7 days, else short); ``los_days`` for reference (never an input).

Example:
    >>> prepare_mimic_iv("../shared/data/mimic_iv_demo", "../prepared/mimic")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets import _mimic_labs as labs_grid
from fusiondx.datasets._adapter import (
    PreparedDataset,
    Skipped,
    find_split_seed,
    finish,
    output_paths,
    progress_bar,
    read_table,
    require_columns,
    write_config,
    write_manifest,
)
from fusiondx.datasets._mimic_admissions import (
    CATEGORICAL,
    LABELS,
    admission_cases,
    earlier_codes,
    icu_in_window,
)
from fusiondx.errors import ConfigError, DataError
from fusiondx.registry import register_adapter

LAYOUT = (
    "hosp/ with admissions, patients, labevents, d_labitems and diagnoses_icd (.csv or .csv.gz)"
)
ABOUT = [
    "MIMIC-IV (PhysioNet). The demo is open under the ODbL; the full database needs credentialed "
    "access and its data use agreement (results only, never rows, may be shared).",
    "Cite: Johnson AEW, Bulgarelli L, Shen L, et al. MIMIC-IV, a freely accessible electronic health "
    "record dataset. Scientific Data 10, 1 (2023); and Johnson A, Bulgarelli L, Pollard T, Horng S, "
    "Celi LA, Mark R. MIMIC-IV Clinical Database Demo (version 2.2), PhysioNet (2023).",
]


@register_adapter(
    "mimic_iv",
    aliases=("mimic", "mimic-iv", "mimiciv", "mimic_iv_demo"),
    example="../shared/data/mimic_iv_demo --out ../prepared/mimic --hours 48 --label long_stay",
)
def prepare_mimic_iv(
    root: str | Path,
    out: str | Path,
    *,
    hours: int = 24,
    label: str = "death",
    labs: str | list[int] = "default",
    n_labs: int = 20,
    step_minutes: int = 30,
    progress: bool = False,
) -> PreparedDataset:
    """MIMIC-IV admissions: first-day labs series + admission data + earlier ICD codes; death.

    Writes the manifest, ``labs/*.npy``, ``labs.csv``, ``mimic_iv.yaml`` and ``skipped.csv``.

    Args:
        root: the MIMIC-IV folder (holds hosp/).
        out: output folder, or the manifest's path (``.csv``).
        hours: observation window after admittime (24 or 48).
        label: the task of the config: ``death`` or ``long_stay`` (both columns are written).
        labs: ``default`` (the 20 labs of :data:`DEFAULT_LABS`), ``auto`` (the ``n_labs`` labs
            measured in most windows of this data), or a list of itemids.
        n_labs: how many labs ``auto`` picks.
        step_minutes: grid step. 30 by default: FusionDx reads a ``.npy`` signal as
            ``(leads, samples)`` only when it has at least as many samples as leads, and 20 labs
            with their measured-flags are 40 channels, more than 24 hourly steps.
        progress: show progress while labevents is read.
    """
    if label not in LABELS:
        raise ConfigError(f"Unknown MIMIC-IV label '{label}'.", fix="use death or long_stay")
    if hours <= 0 or (hours * 60) % step_minutes:
        raise ConfigError(
            f"hours={hours} is not a whole number of {step_minutes}-minute steps.",
            fix="use --hours 24 or 48",
        )
    root = _find_root(Path(root).expanduser().resolve())
    tables = {
        n: _table(root, "hosp", n)
        for n in ("admissions", "patients", "labevents", "d_labitems", "diagnoses_icd")
    }
    paths = output_paths(out, "mimic_iv", inputs=root)
    adm = read_table(tables["admissions"])
    require_columns(
        adm,
        [
            "subject_id",
            "hadm_id",
            "admittime",
            "dischtime",
            "hospital_expire_flag",
            "admission_type",
        ],
        tables["admissions"],
        "use hosp/admissions of MIMIC-IV 2.x",
    )
    pat = read_table(tables["patients"])
    require_columns(
        pat,
        ["subject_id", "gender", "anchor_age", "anchor_year"],
        tables["patients"],
        "use hosp/patients of MIMIC-IV 2.x",
    )
    for c in ("admittime", "dischtime", "deathtime", "edregtime", "edouttime"):
        if c in adm:
            adm[c] = pd.to_datetime(adm[c], errors="coerce")
    skipped = Skipped()
    cases = admission_cases(adm, pat.drop_duplicates("subject_id").set_index("subject_id"), skipped)
    if cases.empty:
        raise DataError(
            "No MIMIC-IV admission could be used; see the reasons in skipped.csv.",
            file=tables["admissions"],
            fix="check hosp/admissions and hosp/patients",
        )
    notes: list[str] = []
    admit = cases.set_index("hadm_id")["admittime"]
    # ~40 MB of gzip per 2 M-row chunk: only an estimate of the total, for the bar.
    n_chunks = max(1, tables["labevents"].stat().st_size // 40_000_000)
    with progress_bar(progress, "reading labevents", n_chunks) as advance:
        rows = labs_grid.window_labs(
            tables["labevents"],
            admit,
            hours,
            step_minutes,
            None if labs == "auto" else _itemids(labs),
            advance,
        )
    itemids = labs_grid.choose_labs(rows, n_labs) if labs == "auto" else _itemids(labs)
    rows = rows[rows["itemid"].isin(itemids)]
    steps = hours * 60 // step_minutes
    if 2 * len(itemids) > steps:
        raise ConfigError(
            f"{len(itemids)} labs make {2 * len(itemids)} channels, more than the {steps} time "
            "steps; FusionDx reads such an array as transposed.",
            fix="use fewer labs (--labs auto --n-labs 12), a smaller --step-minutes, or more --hours",
        )
    absent = [i for i in itemids if i not in set(rows["itemid"])]
    if absent:
        notes.append(
            f"lab itemids with no value in any window: {absent} (their channels are all zero)"
        )
    values, scaling = labs_grid.scale_values(rows, itemids)
    files = labs_grid.write_grids(rows, values, itemids, steps, paths.folder / "labs")
    labs_grid.write_lab_table(
        paths.folder / "labs.csv", itemids, scaling, read_table(tables["d_labitems"])
    )
    cases["labs"] = cases["hadm_id"].map(lambda h: f"labs/{files[h]}" if h in files else np.nan)
    cases["history"] = earlier_codes(
        adm, read_table(tables["diagnoses_icd"], dtype={"icd_code": str}), cases
    )
    icu = _optional(root, "icu", "icustays")
    if icu is not None:
        cases["icu_in_window"] = icu_in_window(read_table(icu), cases, hours)
    _notes(cases, hours, notes)
    frame = cases.drop(columns=["admittime", "end"]).rename(
        columns={"hadm_id": "case_id", "subject_id": "patient_id"}
    )
    write_manifest(frame, paths.manifest)
    write_config(
        _config(paths.manifest.name, label, len(itemids), steps, step_minutes, icu is not None),
        paths.config,
        [
            f"MIMIC-IV, label {label}, labs of the first {hours} h; written by "
            "`fusiondx prepare mimic_iv`.",
            "Split: made by FusionDx, grouped by patient_id; data.split.seed checked to "
            "put both classes in every split. ODbL (demo); cite Johnson et al. 2023.",
            "Few positives per split: prefer `fusiondx study <this file> --folds 5` "
            "(every admission scored once).",
            "Next: fusiondx validate <this file>; fusiondx study <this file>",
        ],
    )
    other = "long_stay" if label == "death" else "death"
    seed, _ = find_split_seed(
        paths.config,
        paths.manifest,
        fix=(
            f"prepare more admissions (the full MIMIC-IV), try --label {other}, or set data.split.seed "
            "by hand and use `fusiondx study <config> --folds 5`"
        ),
    )
    if seed != 0:
        notes.append(
            f"split seed 0 left a class out of a split; the config uses data.split.seed {seed}"
        )
    counts = {f"{label}={c}": int((frame[label] == c).sum()) for c in LABELS[label]}
    counts.update(
        patients=int(frame["patient_id"].nunique()), with_labs=int(frame["labs"].notna().sum())
    )
    return finish("mimic_iv", paths, frame, skipped, "hadm_id", counts, notes, ABOUT)


def _find_root(root: Path) -> Path:
    for cand in (
        root,
        root.parent if root.name == "hosp" else None,
        *(sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []),
    ):
        if cand is not None and (cand / "hosp").is_dir():
            return cand
    raise DataError(
        "This folder does not look like MIMIC-IV: it has no hosp/ folder.",
        file=root,
        fix=f"pass the folder of the PhysioNet download, which holds {LAYOUT}",
    )


def _optional(root: Path, module: str, name: str) -> Path | None:
    for suffix in (".csv.gz", ".csv"):
        if (root / module / f"{name}{suffix}").is_file():
            return root / module / f"{name}{suffix}"
    return None


def _table(root: Path, module: str, name: str) -> Path:
    path = _optional(root, module, name)
    if path is None:
        raise DataError(
            f"This MIMIC-IV folder lacks {module}/{name}.csv.gz (or .csv).",
            file=root / module,
            fix=f"pass the folder of the complete download, which holds {LAYOUT}",
        )
    return path


def _itemids(labs: str | list[int]) -> list[int]:
    if labs == "default":
        return list(labs_grid.DEFAULT_LABS)
    if isinstance(labs, str):
        try:
            return [int(x) for x in labs.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(
                f"labs must be default, auto or comma-separated itemids, got '{labs}'.",
                fix="e.g. --labs 50912,50971,50983",
            ) from None
    return [int(x) for x in labs]


def _notes(cases: pd.DataFrame, hours: int, notes: list[str]) -> None:
    ended = cases["end"] < cases["admittime"] + pd.Timedelta(hours=hours)
    died = ended & (cases["death"] == "died")
    if ended.any():
        notes.append(
            f"{int(ended.sum())} admission(s) ended within the first {hours} h "
            f"({int(died.sum())} by death): their window is shorter, and for them the outcome "
            "is partly visible"
        )
    none = cases["labs"].isna().sum()
    if none:
        notes.append(
            f"{int(none)} admission(s) have no lab in the window: the labs modality is "
            "missing for them"
        )
    if (cases["age"] >= 91).any():
        notes.append("MIMIC-IV shifts ages above 89 to 91 at anchor_year (de-identification)")


def _config(
    manifest: str, label: str, n_labs: int, steps: int, step_minutes: int, icu: bool
) -> dict[str, Any]:
    rate = 1.0 / (60 * step_minutes)
    numeric = ["age", "ed_hours", "prior_admissions", *(["icu_in_window"] if icu else [])]
    return {
        "name": f"mimic_iv_{label}",
        "seed": 0,
        "output_dir": "runs",
        "data": {
            "manifest": manifest,
            "id_column": "case_id",
            "patient_column": "patient_id",
            # Where the patient came from and how the stay is paid for: bookkeeping, not
            # physiology. The study's metadata probe measures how much they tell.
            "metadata_columns": ["admission_location", "insurance", "language"],
            "split": {"fractions": [0.7, 0.15, 0.15], "stratify": True, "seed": 0},
        },
        "modalities": [
            # Values are already on the reference-range scale: per-record z-scoring would erase
            # the levels. No down-sampling stem: 48 steps are short for a GRU already.
            {
                "name": "labs",
                "kind": "signal",
                "column": "labs",
                "preprocessing": {
                    "rate": rate,
                    "source_rate": rate,
                    "length": steps,
                    "leads": 2 * n_labs,
                    "normalize": "none",
                },
                "encoder": {
                    "name": "gru",
                    "options": {"downsample": 1, "stem_width": 32, "hidden_size": 32},
                },
            },
            {
                "name": "admission",
                "kind": "tabular",
                "columns": [*numeric, *CATEGORICAL],
                "categorical": CATEGORICAL,
                "encoder": {"name": "mlp"},
            },
            {
                "name": "history",
                "kind": "text",
                "column": "history",
                # Whole-code tokens: WordPiece would cut an ICD code into meaningless pieces.
                "preprocessing": {
                    "tokenizer": "word",
                    "vocab_size": 2000,
                    "min_frequency": 2,
                    "max_length": 128,
                },
                "encoder": {"name": "text_transformer"},
            },
        ],
        "fusion": {"name": "concat", "dim": 64},
        "tasks": [
            {
                "name": label,
                "label": label,
                "classes": list(LABELS[label]),
                "class_weights": "balanced",
            }
        ],
        "train": {
            "epochs": 20,
            "batch_size": 32,
            "lr": 0.001,
            "early_stopping": {"monitor": "auroc", "patience": 5},
        },
        "study": {
            "strategies": ["concat", "attention", "gated", "late_average"],
            "seeds": 3,
            "jobs": 2,
        },
    }
