"""MedMNIST adapter: .npz files written by the test, and the shared PneumoniaMNIST subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import fusiondx
from fusiondx.config import load_config
from fusiondx.datasets.medmnist import CLASS_NAMES, prepare_medmnist
from fusiondx.errors import DataError
from tests.datasets.public_layouts import SHARED_DATA, medmnist_arrays

PNEUMONIA = SHARED_DATA / "medmnist_pneumonia"


def _npz(folder: Path, name: str, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / name, **arrays)
    return folder / name


def test_binary_pngs_labels_and_splits(pneumonia_npz: Path, tmp_path: Path) -> None:
    arrays = dict(np.load(pneumonia_npz))
    result = prepare_medmnist(pneumonia_npz.parent, tmp_path / "out")  # the folder holding it
    frame = pd.read_csv(result.manifest, dtype=str).set_index("case_id")
    assert result.skipped == [("train_00003", "label [5] is not a class id 0-1")]
    for s in ("train", "val", "test"):
        ids = [f"{s}_{i:05d}" for i in range(len(arrays[f"{s}_images"]))]
        ids = [i for i in ids if i != "train_00003"]
        assert (frame.loc[ids, "split"] == s).all()
        for i in ids[:3]:
            k = int(i.split("_")[1])
            png = np.asarray(Image.open(result.manifest.parent / frame.loc[i, "image"]))
            np.testing.assert_array_equal(png, arrays[f"{s}_images"][k])
            assert (
                frame.loc[i, "label"]
                == CLASS_NAMES["pneumoniamnist"][int(arrays[f"{s}_labels"][k, 0])]
            )
    cfg = load_config(result.config)
    assert cfg.data.split.column == "split" and cfg.tasks[0].classes == ["normal", "pneumonia"]
    assert cfg.modality("image").preprocessing.size == [12, 12]  # type: ignore[union-attr]


def test_multilabel_and_multiclass_sets(tmp_path: Path) -> None:
    arrays = medmnist_arrays(multilabel=14)
    arrays["val_labels"][1, 4] = 2
    chest = prepare_medmnist(_npz(tmp_path / "c", "chestmnist.npz", arrays), tmp_path / "chest")
    task = load_config(chest.config).tasks[0]
    assert task.type == "multilabel" and task.classes == list(CLASS_NAMES["chestmnist"])
    assert [r for r, _ in chest.skipped] == ["val_00001"]
    frame = pd.read_csv(chest.manifest)
    assert frame["atelectasis"].sum() == chest.label_counts["atelectasis"]
    colour = medmnist_arrays(colour=True)
    for s in ("train", "val", "test"):
        colour[f"{s}_labels"] = (
            (np.arange(len(colour[f"{s}_labels"])) % 4).reshape(-1, 1).astype(np.uint8)
        )
    blood = prepare_medmnist(_npz(tmp_path / "b", "bloodmnist_64.npz", colour), tmp_path / "blood")
    cfg = load_config(blood.config)
    assert cfg.tasks[0].type == "multiclass" and cfg.tasks[0].classes == [
        f"class_{k}" for k in range(4)
    ]
    assert cfg.modality("image").preprocessing.channels == 3  # type: ignore[union-attr]
    png = Image.open(blood.manifest.parent / pd.read_csv(blood.manifest)["image"][0])
    assert png.mode == "RGB"


def test_layout_errors(tmp_path: Path) -> None:
    arrays = medmnist_arrays()
    del arrays["val_labels"]
    with pytest.raises(DataError, match="val_labels"):
        prepare_medmnist(_npz(tmp_path / "a", "x.npz", arrays), tmp_path / "out")
    volume = medmnist_arrays()
    volume["train_images"] = np.zeros((24, 8, 8, 8), dtype=np.uint8)
    with pytest.raises(DataError, match="not a 2D set"):
        prepare_medmnist(_npz(tmp_path / "v", "organmnist3d.npz", volume), tmp_path / "out")
    two = tmp_path / "two"
    _npz(two, "a.npz", medmnist_arrays())
    _npz(two, "b.npz", medmnist_arrays())
    with pytest.raises(DataError, match="2 .npz files"):
        prepare_medmnist(two, tmp_path / "out")
    with pytest.raises(DataError, match="dataset's own folder"):
        prepare_medmnist(two / "a.npz", two)


def test_fit_end_to_end(pneumonia_npz: Path, tmp_path: Path) -> None:
    result = prepare_medmnist(pneumonia_npz, tmp_path / "out")
    raw = yaml.safe_load(result.config.read_text())
    raw["train"].update(epochs=1, early_stopping=None, progress=False, threads=1)
    run = fusiondx.fit(load_config(raw, base_dir=result.config.parent))
    test_cases = int((pd.read_csv(result.manifest)["split"] == "test").sum())
    assert run.metrics["cases"]["test"] == test_cases
    assert 0.0 <= run.metrics["test"]["diagnosis"]["auroc"] <= 1.0


@pytest.mark.realdata
@pytest.mark.skipif(not PNEUMONIA.is_dir(), reason="../shared/data/medmnist_pneumonia not present")
def test_shared_pneumoniamnist(tmp_path: Path) -> None:
    result = prepare_medmnist(PNEUMONIA, tmp_path / "pneumonia")
    z = np.load(next(PNEUMONIA.glob("*.npz")))
    assert result.cases == 3166 and result.skipped == []
    assert result.label_counts == {"normal": 1583, "pneumonia": 1583}
    frame = pd.read_csv(result.manifest)
    for s in ("train", "val", "test"):
        sel = frame["split"] == s
        assert sel.sum() == len(z[f"{s}_labels"])
        assert (frame.loc[sel, "label"] == "pneumonia").sum() == int(z[f"{s}_labels"].sum())
