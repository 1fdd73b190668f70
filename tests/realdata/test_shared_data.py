"""Real public data through the ordinary manifest path (skipped where ../shared/data is absent).

The manifests are written by the test from the datasets' own files; nothing is copied.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx
from fusiondx.data.store import prepare

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

PTBXL = SHARED_DATA / "ptbxl500"
NIH = SHARED_DATA / "nih1000_cxr"
pytestmark = pytest.mark.realdata


def _ptbxl_manifest(out: Path) -> Path:
    db = pd.read_csv(PTBXL / "ptbxl_database.csv")
    frame = pd.DataFrame(
        {
            "case_id": db["ecg_id"].astype(str),
            "patient_id": db["patient_id"].astype("Int64").astype(str),
            "ecg": db["filename_lr"] + ".hea",
            "report": db["report"],
            "age": db["age"],
            "sex": db["sex"],
            "height": db["height"],
            "weight": db["weight"],
            "label": [
                "normal" if "NORM" in ast.literal_eval(c) else "abnormal" for c in db["scp_codes"]
            ],
            "split": np.where(
                db["strat_fold"] == 10, "test", np.where(db["strat_fold"] == 9, "val", "train")
            ),
        }
    )
    path = out / "ptbxl_manifest.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.skipif(not PTBXL.is_dir(), reason="../shared/data/ptbxl500 not present")
def test_ptbxl_ecgs_load_and_train(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {
        "name": "ptbxl",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "manifest": str(_ptbxl_manifest(tmp_path)),
            "root": str(PTBXL),
            "split": {"column": "split"},
            "patient_column": "patient_id",
        },
        "modalities": [
            {
                "name": "ecg",
                "kind": "signal",
                "column": "ecg",
                "preprocessing": {"rate": 100, "length": 1000, "leads": 12},
            },
            {
                "name": "report",
                "kind": "text",
                "column": "report",
                "preprocessing": {"vocab_size": 300, "max_length": 32},
            },
            {
                "name": "demo",
                "kind": "tabular",
                "columns": ["age", "sex", "height", "weight"],
                "categorical": ["sex"],
            },
        ],
        "fusion": {"name": "concat", "dim": 32},
        "tasks": [{"name": "norm", "label": "label", "classes": ["normal", "abnormal"]}],
        "train": {"epochs": 2, "progress": False, "early_stopping": None},
    }
    prepared = prepare(fusiondx.load_config(cfg))
    store = prepared.store
    assert len(store) == 500
    assert store.inputs["ecg"][""].shape == (500, 12, 1000)
    assert np.isfinite(store.inputs["ecg"][""]).all()
    # real missing heights arrive as missing flags, not as zeros
    j = prepared.preprocessors["demo"].numeric.index("height")
    assert store.inputs["demo"]["numeric_missing"][:, j].sum() > 50
    res = fusiondx.fit(cfg)
    assert 0.0 <= res.metrics["test"]["norm"]["auroc"] <= 1.0


@pytest.mark.skipif(not NIH.is_dir(), reason="../shared/data/nih1000_cxr not present")
def test_nih_chest_xrays_load_through_a_manifest(tmp_path: Path) -> None:
    table = pd.read_csv(NIH / "Data_Entry_2017_v2020_subset.csv").set_index("Image Index")
    rows = []
    for png in sorted(NIH.glob("*/*/*.png")):
        meta = table.loc[png.name]
        rows.append(
            {
                "case_id": f"{png.parent.parent.name}/{png.name}",
                "image": str(png.relative_to(NIH)),
                "label": png.parent.name.split("_", 1)[1],
                "patient_id": str(meta["Patient ID"]),
                "age": meta["Patient Age"],
                "sex": meta["Patient Gender"],
                "view": meta["View Position"],
            }
        )
    manifest = tmp_path / "nih.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    cfg = {
        "name": "nih",
        "output_dir": str(tmp_path / "runs"),
        "data": {"manifest": str(manifest), "root": str(NIH), "patient_column": "patient_id"},
        "modalities": [
            {
                "name": "cxr",
                "kind": "image",
                "column": "image",
                "preprocessing": {"size": [64, 64]},
            },
            {
                "name": "meta",
                "kind": "tabular",
                "columns": ["age", "sex", "view"],
                "categorical": ["sex", "view"],
            },
        ],
        "tasks": [{"name": "abnormal", "label": "label", "classes": ["normal", "abnormal"]}],
    }
    prepared = prepare(fusiondx.load_config(cfg))
    x = prepared.store.inputs["cxr"][""]
    assert x.shape == (1000, 1, 64, 64)
    # per-image z-score: each image has mean ~0 and std ~1
    assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-3)
    assert np.allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-2)
    frame = pd.DataFrame({"p": prepared.store.ids, "s": prepared.store.split})
    patients = pd.DataFrame(rows)["patient_id"].to_numpy()
    assert pd.DataFrame({"p": patients, "s": frame["s"]}).groupby("p")["s"].nunique().max() == 1
