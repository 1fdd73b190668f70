"""NIH ChestX-ray14 (Wang et al., 2017) -> a FusionDx manifest and config.

Layout read: a ``Data_Entry_2017*.csv`` table (one row per image) and the PNG files it names in
``Image Index``, found anywhere under the dataset folder: the full download keeps them in
``images_0NN/images/``, the shared subset in ``{train,valid,test}/{0_normal,1_abnormal}/``. One
case per image (``case_id`` = the file name without ``.png``), grouped by ``Patient ID``:

- ``image``: the PNG, relative to the dataset folder (``data.root``);
- tabular: age, sex, view position (PA/AP), follow-up number;
- ``label``: ``normal`` where ``Finding Labels`` is "No Finding", else ``abnormal``;
- one 0/1 column per finding (the 14 of ChestX-ray14) and ``findings`` (``;``-joined);
- ``folder``: where the file was found (kept only to compare with the subset's own folders).

The split is made by FusionDx, stratified by label and grouped by patient, so no patient is in
two splits; the subset's own train/valid/test folders are not used (patients cross them).

Example:
    >>> prepare_nih_cxr("../shared/data/nih1000_cxr", "../prepared/nih_cxr")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import (
    PreparedDataset,
    Skipped,
    find_split_seed,
    finish,
    multilabel_task,
    output_paths,
    read_table,
    require_columns,
    track,
    write_config,
    write_manifest,
)
from fusiondx.errors import ConfigError, DataError
from fusiondx.registry import register_adapter

FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
TARGETS = ("binary", "findings")
NO_FINDING = "No Finding"
LAYOUT = "Data_Entry_2017*.csv and the PNG images it names (in any sub-folders)"
ABOUT = [
    "NIH ChestX-ray14 (NIH Clinical Center): unrestricted use with citation.",
    "Cite: Wang X, Peng Y, Lu L, Lu Z, Bagheri M, Summers RM. ChestX-ray8: Hospital-scale chest X-ray "
    "database and benchmarks on weakly-supervised classification and localization of common thorax "
    "diseases. IEEE CVPR 2017, 3462-3471.",
]
_SOURCE_SPLITS = {"train", "valid", "val", "test"}


@register_adapter(
    "nih_cxr",
    aliases=("nih", "nih-cxr", "chestxray14", "chestx-ray14"),
    example="../shared/data/nih1000_cxr --out ../prepared/nih_cxr --target findings",
)
def prepare_nih_cxr(
    root: str | Path,
    out: str | Path,
    *,
    target: str = "binary",
    min_patients: int = 10,
    image_size: int = 64,
    progress: bool = False,
) -> PreparedDataset:
    """NIH ChestX-ray14 images + demographics; abnormal vs No Finding (or 14 findings).

    Writes the manifest, ``nih_cxr.yaml`` and ``skipped.csv`` into ``out``.

    Args:
        root: the dataset folder (holds Data_Entry_2017*.csv and the images).
        out: output folder, or the manifest's path (``.csv``).
        target: ``binary`` (abnormal vs No Finding) or ``findings`` (multi-label, the findings
            seen in at least ``min_patients`` patients).
        min_patients: findings seen in fewer patients are left out of the ``findings`` task: the
            split is grouped by patient, so a finding of a few patients cannot reach every split.
        image_size: side the images are resized to for training (in the config).
        progress: show progress bars while images are found and decoded.
    """
    if target not in TARGETS:
        raise ConfigError(f"Unknown ChestX-ray14 target '{target}'.", fix="use binary or findings")
    root = Path(root).expanduser().resolve()
    table = _find_table(root)
    paths = output_paths(out, "nih_cxr", inputs=root)
    df = read_table(table, dtype=str, keep_default_na=False, na_values=[""])
    require_columns(
        df,
        ["Image Index", "Finding Labels", "Patient ID"],
        table,
        "use the Data_Entry_2017 table of the NIH download",
    )
    index, repeated = _index_images(root, progress)
    skipped, rows, seen = Skipped(), [], set()
    for r in track(df.to_dict("records"), len(df), "checking images", progress):
        name = str(r["Image Index"]).strip() if isinstance(r["Image Index"], str) else ""
        if not name or name in seen:
            skipped.add(name or "(empty)", "empty or repeated Image Index")
            continue
        seen.add(name)
        row = _row(r, name, root, index)
        if isinstance(row, str):
            skipped.add(name, row)
        else:
            rows.append(row)
    if not rows:
        raise DataError(
            "No ChestX-ray14 image could be used; see the reasons in skipped.csv.",
            file=table,
            fix="pass the folder that holds both the table and the images",
        )
    frame = pd.DataFrame(rows)
    notes = _folder_notes(frame)
    if repeated:
        notes.append(f"{repeated} image name(s) occur in several folders; the first found is used")
    bad_age = int(frame.pop("_bad_age").sum())
    if bad_age:
        notes.append(
            f"{bad_age} age value(s) were not a plausible age (0-120 years) and are left empty"
        )
    patients = {f: frame.loc[frame[f] == 1, "patient_id"].nunique() for f in FINDINGS}
    classes = [f for f in FINDINGS if patients[f] >= min_patients]
    if target == "findings":
        rare = [
            f"{f} ({int(frame[f].sum())} images, {patients[f]} patients)"
            for f in FINDINGS
            if f not in classes
        ]
        if rare:
            notes.append(
                f"findings seen in fewer than {min_patients} patients left out of the task: "
                + ", ".join(rare)
            )
        if not classes:
            raise DataError(
                f"No finding is seen in {min_patients} or more patients.",
                fix="lower --min-patients, or use --target binary",
            )
    write_manifest(frame, paths.manifest)
    write_config(
        _config(paths.manifest.name, root, target, classes, image_size),
        paths.config,
        [
            f"NIH ChestX-ray14, target {target}; written by `fusiondx prepare nih_cxr`.",
            "Split: made by FusionDx, grouped by patient_id (data.split.seed checked to put every "
            "class in every split). Cite Wang et al., CVPR 2017.",
            "Next: fusiondx validate <this file>; fusiondx fit <this file>; "
            "fusiondx study <this file>",
        ],
    )
    seed, gaps = find_split_seed(
        paths.config,
        paths.manifest,
        strict=target == "binary",
        fix="raise --min-patients, or use --target binary",
    )
    if seed != 0:
        notes.append(
            f"split seed 0 left a class out of a split; the config uses data.split.seed {seed}"
        )
    if gaps:
        notes.append(
            f"no seed gives every finding in every split; left: {'; '.join(gaps)} "
            "(AUROC of such a finding is undefined in that split)"
        )
    counts = (
        {c: int((frame["label"] == c).sum()) for c in ("normal", "abnormal")}
        if target == "binary"
        else {c: int(frame[c].sum()) for c in classes}
    )
    counts["patients"] = int(frame["patient_id"].nunique())
    return finish("nih_cxr", paths, frame, skipped, "image_index", counts, notes, ABOUT)


def _row(r: dict[str, Any], name: str, root: Path, index: dict[str, str]) -> dict[str, Any] | str:
    """The manifest row of one table row, or the reason it cannot be used."""
    from fusiondx.data.readers.image import read_image

    raw = r["Finding Labels"]
    labels = [p.strip() for p in raw.split("|") if p.strip()] if isinstance(raw, str) else []
    if not labels or any(p not in FINDINGS and p != NO_FINDING for p in labels):
        return f"Finding Labels '{raw}' is empty or names an unknown finding"
    if not isinstance(r["Patient ID"], str):
        return "no Patient ID"
    rel = index.get(name)
    if rel is None:
        return "image file not found under the dataset folder"
    try:
        read_image(root / rel)  # decoded in full, as fit will
    except DataError as err:
        return f"image {rel}: {err.what}"
    age = _age(r.get("Patient Age"))
    found = set(labels) - {NO_FINDING}
    return {
        "case_id": Path(name).stem,
        "patient_id": r["Patient ID"].strip(),
        "image": rel,
        "age": age if age is not None else np.nan,
        "sex": r.get("Patient Gender", np.nan),
        "view": r.get("View Position", np.nan),
        "follow_up": _int(r.get("Follow-up #")),
        "label": "abnormal" if found else "normal",
        "findings": ";".join(f for f in FINDINGS if f in found) or "none",
        **{f: int(f in found) for f in FINDINGS},
        "folder": Path(rel).parent.as_posix(),
        "_bad_age": age is None and isinstance(r.get("Patient Age"), str),
    }


def _find_table(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(
            "The ChestX-ray14 folder does not exist.",
            file=root,
            fix=f"pass the folder of the download, which holds {LAYOUT}",
        )
    tables = sorted(root.glob("Data_Entry_2017*.csv"))
    if not tables:
        raise DataError(
            "This folder does not look like NIH ChestX-ray14: no Data_Entry_2017*.csv in it.",
            file=root,
            fix=f"pass the folder of the download, which holds {LAYOUT}",
        )
    if len(tables) > 1:
        raise DataError(
            f"Several label tables: {[t.name for t in tables]}.",
            file=root,
            fix="keep one Data_Entry_2017*.csv in the folder (the v2020 one is the "
            "corrected table)",
        )
    return tables[0]


def _index_images(root: Path, progress: bool) -> tuple[dict[str, str], int]:
    """File name -> path relative to root, for every PNG below root; and how many names repeat."""
    index: dict[str, str] = {}
    repeated = 0
    walk = sorted(os.walk(root))  # sorted: the same file wins on every machine
    for folder, _, files in track(walk, len(walk), "finding images", progress):
        for f in sorted(files):
            if f.lower().endswith(".png"):
                if f in index:
                    repeated += 1
                    continue
                index[f] = Path(os.path.relpath(Path(folder) / f, root)).as_posix()
    return index, repeated


def _age(value: Any) -> float | None:
    # Data_Entry_2017.csv (2017) wrote ages as '058Y'; the v2020 table as plain numbers.
    m = re.match(r"\s*(\d+)", value) if isinstance(value, str) else None
    age = float(m.group(1)) if m else None
    return age if age is not None and age <= 120 else None


def _int(value: Any) -> float:
    v = pd.to_numeric(value, errors="coerce")
    return float(v) if v == v else np.nan


def _folder_notes(frame: pd.DataFrame) -> list[str]:
    """What the subset's own split/class folders say, compared with the table (notes only)."""
    parts = frame["folder"].str.split("/")
    source = parts.str[0].where(parts.str[0].isin(_SOURCE_SPLITS))
    if source.isna().all():
        return []
    notes = []
    known = frame.assign(s=source.replace("val", "valid")).dropna(subset=["s"])
    folders = known.groupby("patient_id")["s"].agg(set)
    crossing = int(sum(len(s) > 1 for s in folders))
    if crossing:
        train_test = int(sum({"train", "test"} <= s for s in folders))
        notes.append(
            f"{crossing} patient(s) have images in several of the subset's own split folders "
            f"({train_test} in both train/ and test/); FusionDx's split is grouped by patient, "
            "which removes that leak"
        )
    folder_class = parts.str[1].map({"0_normal": "normal", "1_abnormal": "abnormal"})
    differ = frame.loc[folder_class.notna() & (folder_class != frame["label"]), "case_id"].tolist()
    if differ:
        notes.append(
            f"{len(differ)} image(s) sit in a class folder that disagrees with Finding Labels "
            f"({', '.join(differ[:5])}); the label follows the table"
        )
    return notes


def _config(
    manifest: str, root: Path, target: str, classes: list[str], size: int
) -> dict[str, Any]:
    if target == "binary":
        task: dict[str, Any] = {
            "name": "abnormal",
            "label": "label",
            "classes": ["normal", "abnormal"],
        }
    else:
        task = multilabel_task("findings", classes)
    return {
        "name": f"nih_cxr_{target}",
        "seed": 0,
        "output_dir": "runs",
        "data": {
            "manifest": manifest,
            "root": str(root),
            "id_column": "case_id",
            "patient_column": "patient_id",
            # Acquisition and workflow, not radiology: AP films are taken of bed-bound patients,
            # and sicker patients are imaged more often. The study's metadata probe measures them.
            "metadata_columns": ["view", "follow_up"],
            "split": {"fractions": [0.7, 0.15, 0.15], "stratify": True, "seed": 0},
        },
        "modalities": [
            # No augmentation: flips put the heart on the wrong side, and rotation (MONAI, per
            # image) triples the CPU time of an epoch for little gain at 64 x 64.
            {
                "name": "cxr",
                "kind": "image",
                "column": "image",
                "preprocessing": {"size": [size, size]},
                "encoder": {"name": "cnn", "options": {"dropout": 0.3}},
            },
            {
                "name": "demographics",
                "kind": "tabular",
                "columns": ["age", "sex", "view", "follow_up"],
                "categorical": ["sex", "view"],
                "encoder": {"name": "mlp"},
            },
        ],
        "fusion": {"name": "concat", "dim": 64},
        "tasks": [task],
        # 700 training images overfit within a few epochs: more dropout and weight decay, lower lr.
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "lr": 0.0005,
            "weight_decay": 0.001,
            "early_stopping": {"monitor": "auroc", "patience": 4},
        },
        "study": {
            "strategies": ["concat", "attention", "gated", "late_average"],
            "seeds": 3,
            "jobs": 2,
        },
    }
