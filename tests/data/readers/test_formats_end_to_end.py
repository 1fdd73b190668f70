"""EDF (EEG) files and DICOM series folders through `fusiondx validate` and `fusiondx fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from edfio import Edf, EdfAnnotation, EdfSignal
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.data.readers.image.dicom import write_dicom_file
from fusiondx.data.store import prepare

runner = CliRunner()
N = 40
EEG_LEADS = ["Fp1", "Fp2", "Cz"]


def _config(tmp_path: Path, data: Path, modality: dict[str, Any], **data_keys: Any) -> Path:
    cfg = {
        "name": "formats",
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "manifest": str(data / "manifest.csv"),
            "patient_column": "patient_id",
            **data_keys,
        },
        "modalities": [modality],
        "fusion": {"name": "concat", "dim": 8},
        "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "progress": False,
            "early_stopping": None,
            "small_data": "off",
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(command: str, cfg: Path, code: int, *needles: str) -> str:
    args = [command, str(cfg)] + (["--quiet", "--overwrite"] if command == "fit" else [])
    result = runner.invoke(app, args)
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, f"{n!r} not in: {out}"
    return out


def _manifest(data: Path, column: str, cells: list[str], labels: np.ndarray) -> None:
    pd.DataFrame(
        {
            "case_id": [f"case_{i:03d}" for i in range(N)],
            "patient_id": [f"p{i:03d}" for i in range(N)],
            "label": np.where(labels == 1, "disease", "healthy"),
            column: cells,
        }
    ).to_csv(data / "manifest.csv", index=False)


@pytest.fixture(scope="module")
def eeg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EEG at 128 Hz beside a 1 Hz SpO2 channel and EDF+ annotations, as polysomnography has."""
    data = tmp_path_factory.mktemp("eeg")
    (data / "eeg").mkdir()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    t = np.arange(4 * 128) / 128
    cells = []
    for i, y in enumerate(labels):
        eeg = rng.normal(0, 20, (3, t.size)) + y * 40 * np.sin(2 * np.pi * 10 * t)  # alpha when ill
        signals = [
            EdfSignal(
                np.clip(x, -450, 450),
                128,
                label=n,
                physical_dimension="uV",
                physical_range=(-500, 500),
            )
            for x, n in zip(eeg, EEG_LEADS, strict=True)
        ]
        signals.append(EdfSignal(rng.uniform(94, 99, 4), 1, label="SpO2", physical_range=(0, 100)))
        Edf(signals, annotations=[EdfAnnotation(1.0, None, "eyes closed")]).write(
            data / "eeg" / f"{i}.edf"
        )
        cells.append(f"eeg/{i}.edf")
    _manifest(data, "eeg", cells, labels)
    return data


def test_eeg_edf_validate_and_fit(eeg_data: Path, tmp_path: Path) -> None:
    eeg = {
        "name": "eeg",
        "kind": "signal",
        "column": "eeg",
        "preprocessing": {"rate": 64, "length": 256, "lead_names": EEG_LEADS},
    }
    cfg = _config(tmp_path, eeg_data, eeg)
    _run("validate", cfg, 0, f"all {N} cases are valid")
    _run("fit", cfg, 0)
    store = prepare(fusiondx.load_config(cfg)).store
    x = np.asarray(store.inputs["eeg"][""])
    assert x.shape == (N, 3, 256) and np.isfinite(x).all() and x.std() > 0


def test_eeg_of_mixed_rates_without_lead_names_is_refused(eeg_data: Path, tmp_path: Path) -> None:
    eeg = {
        "name": "eeg",
        "kind": "signal",
        "column": "eeg",
        "preprocessing": {"rate": 64, "length": 256},
    }
    cfg = _config(tmp_path, eeg_data, eeg)
    for command in ("validate", "fit"):
        _run(command, cfg, 2, "0.edf", "Fp1, Fp2, Cz at 128 Hz", "SpO2 at 1 Hz", "lead_names")


@pytest.fixture(scope="module")
def series_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of 4 axial slices per case, written in reverse position order."""
    from pydicom.uid import generate_uid

    data = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, N)
    cells = []
    for i, y in enumerate(labels):
        folder = data / "ct" / f"case_{i:03d}"
        folder.mkdir(parents=True)
        uid = generate_uid()
        for k in range(4):
            stored = rng.integers(900, 1100, (8, 8)) + (200 if y and k == 2 else 0)
            write_dicom_file(
                folder / f"IM{3 - k:04d}",
                stored.astype(np.uint16),
                intercept=-1024.0,
                position=(0.0, 0.0, 2.5 * k),
                orientation=(1, 0, 0, 0, 1, 0),
                series_uid=uid,
            )
        cells.append(f"ct/case_{i:03d}")
    _manifest(data, "ct", cells, labels)
    return data


def test_dicom_series_folders_validate_and_fit(series_data: Path, tmp_path: Path) -> None:
    ct = {
        "name": "ct",
        "kind": "image",
        "column": "ct",
        "encoder": {"name": "cnn"},
        "preprocessing": {"size": [4, 8, 8], "window": "header"},
    }
    cfg = _config(tmp_path, series_data, ct, cache="disk", cache_dir=str(tmp_path / "cache"))
    _run("validate", cfg, 0, f"all {N} cases are valid")
    _run("fit", cfg, 0)
    x = np.asarray(prepare(fusiondx.load_config(cfg)).store.inputs["ct"][""])
    assert x.shape == (N, 1, 4, 8, 8) and np.isfinite(x).all()

    # The disk cache keys on every slice: a slice cut short is seen, not served from the cache.
    slice_file = series_data / "ct" / "case_005" / "IM0001"
    original = slice_file.read_bytes()
    try:
        slice_file.write_bytes(original[:-20])
        _run("validate", cfg, 2, "case_005", "IM0001", "slice")
    finally:
        slice_file.write_bytes(original)
