"""Other file formats through the whole path: DICOM + NPY cohort, 3D NIfTI volumes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

import fusiondx
from fusiondx.data.store import prepare
from fusiondx.datasets.synthetic import make_cohort


def test_dicom_images_and_npy_signals_train(tmp_path: Path) -> None:
    manifest = make_cohort(
        tmp_path / "c", n_cases=80, seed=2, image_size=32, image_format="dicom", signal_format="npy"
    )
    cfg = {
        "name": "dcm",
        "output_dir": str(tmp_path / "runs"),
        "data": {"manifest": str(manifest)},
        "modalities": [
            {
                "name": "cxr",
                "kind": "image",
                "column": "image",
                "preprocessing": {"size": [32, 32], "window": "header"},
            },
            {
                "name": "ecg",
                "kind": "signal",
                "column": "ecg",
                "preprocessing": {"source_rate": 100, "rate": 50, "length": 500},
            },
        ],
        "tasks": [{"label": "label", "classes": ["healthy", "disease"]}],
        "train": {"epochs": 1, "progress": False},
    }
    prepared = prepare(fusiondx.load_config(cfg))
    x = prepared.store.inputs["cxr"][""]
    assert x.shape == (80, 1, 32, 32) and np.isfinite(x).all()
    assert prepared.store.inputs["ecg"][""].shape == (80, 3, 500)
    assert fusiondx.fit(cfg).run_dir.joinpath("model.pt").is_file()


def test_3d_nifti_volumes_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    (tmp_path / "vol").mkdir()
    for i in range(40):
        label = i % 2
        vol = rng.normal(size=(20, 20, 12)).astype(np.float32)
        if label:
            vol[5:12, 5:12, 3:8] += 3.0  # a bright lesion
        nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "vol" / f"v{i}.nii.gz")
        rows.append({"case_id": f"v{i}", "ct": f"vol/v{i}.nii.gz", "label": ["no", "yes"][label]})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    cfg = {
        "name": "ct",
        "output_dir": str(tmp_path / "runs"),
        "data": {"manifest": str(tmp_path / "m.csv")},
        "modalities": [
            {
                "name": "ct",
                "kind": "image",
                "column": "ct",
                "preprocessing": {"size": [8, 16, 16]},
                "encoder": {"name": "cnn"},
            }
        ],
        "fusion": {"dim": 16},
        "tasks": [{"label": "label"}],
        "train": {"epochs": 1, "progress": False, "batch_size": 8},
    }
    prepared = prepare(fusiondx.load_config(cfg))
    assert prepared.store.inputs["ct"][""].shape == (40, 1, 8, 16, 16)
    assert prepared.specs["ct"].spatial_dims == 3
    assert prepared.tasks[0].classes == ("no", "yes")  # 'no' recognised as the negative class
    res = fusiondx.fit(cfg)
    assert 0.0 <= res.metrics["test"]["diagnosis"]["accuracy"] <= 1.0
