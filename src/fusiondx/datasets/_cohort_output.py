"""The manifest and ready-to-run config of a cohort built from FHIR or OMOP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import (
    OutputPaths,
    PreparedDataset,
    Skipped,
    finish,
    write_config,
    write_manifest,
)
from fusiondx.datasets._cohort_spec import CohortSpec
from fusiondx.errors import DataError


def write_cohort(
    dataset: str,
    frame: pd.DataFrame,
    spec: CohortSpec,
    paths: OutputPaths,
    skipped: Skipped,
    *,
    signal: dict[str, Any] | None,
    about: list[str],
    notes: list[str],
) -> PreparedDataset:
    """Write manifest, ``<dataset>.yaml`` (data root: the output folder), skipped.csv, README.

    A modality no case has is left out of the config with a note. ``signal``: the
    preprocessing of the signal modality (``source_rate``, ``length``, ``leads``).
    """
    if frame.empty:
        skipped.write(paths.skipped, "id")
        raise DataError(
            "No case could be built; see the reasons in skipped.csv.",
            file=paths.skipped,
            fix="check the cohort file's codes and windows against the data",
        )
    lab = spec.label
    counts = {c: int((frame[lab.name] == c).sum()) for c in (lab.negative, lab.positive)}
    modalities: list[dict[str, Any]] = []
    tab_cols = [*spec.demographics, *(f.name for f in spec.features)]
    tab_cols = [c for c in tab_cols if c in frame and frame[c].notna().any()]
    dropped = [
        c for c in (*spec.demographics, *(f.name for f in spec.features)) if c not in tab_cols
    ]
    if dropped:
        notes.append(f"no case has a value for {', '.join(dropped)}; left out of the config")
    if tab_cols:
        cats = [
            c
            for c in tab_cols
            if c == "sex" or any(f.name == c and f.categorical for f in spec.features)
        ]
        modalities.append(
            {
                "name": "labs",
                "kind": "tabular",
                "columns": tab_cols,
                "categorical": cats,
                "encoder": {"name": "mlp"},
            }
        )
    parts = (
        (spec.image, "image", {"size": [64, 64]}, "cnn"),
        (spec.signal, "signal", signal or {}, "cnn1d"),
        (
            spec.text,
            "text",
            {"tokenizer": "wordpiece", "vocab_size": 1000, "max_length": 64},
            "text_transformer",
        ),
    )
    for part, kind, prep, encoder in parts:
        if part is None:
            continue
        if part.name not in frame or frame[part.name].isna().all():
            notes.append(f"no case has a {kind} ({part.name}); left out of the config")
            continue
        modalities.append(
            {
                "name": part.name,
                "kind": kind,
                "column": part.name,
                "preprocessing": prep,
                "encoder": {"name": encoder},
            }
        )
    if not modalities:
        raise DataError(
            "The cohort has no modality with a value in any case.",
            file=paths.manifest,
            fix="check the cohort file's feature codes, windows and parts against the data",
        )
    for c in list(frame.columns):
        if frame[c].dtype == object:
            frame[c] = frame[c].where(frame[c].notna(), np.nan)
    write_manifest(frame, paths.manifest)
    config = {
        "name": f"{dataset}_{lab.name}",
        "seed": 0,
        "output_dir": "runs",
        "data": {
            "manifest": paths.manifest.name,
            "id_column": "case_id",
            "patient_column": "patient_id",
        },
        "modalities": modalities,
        "fusion": {"name": "concat", "dim": 64},
        "tasks": [{"name": lab.name, "label": lab.name, "classes": [lab.negative, lab.positive]}],
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "lr": 0.001,
            "early_stopping": {"monitor": "auroc", "patience": 4},
        },
    }
    write_config(
        config,
        paths.config,
        [
            f"Cohort built by `fusiondx prepare {dataset}` (one case per {spec.case}).",
            "Next: fusiondx validate <this file>; fusiondx fit <this file>; fusiondx study <this file>",
        ],
    )
    return finish(dataset, paths, frame, skipped, "id", counts, notes, about)
