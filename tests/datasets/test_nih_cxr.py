"""NIH ChestX-ray14 adapter: tiny layout written by the test, and the shared 1000-image subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusiondx.config import load_config
from fusiondx.datasets._adapter import simulate_split, split_gaps
from fusiondx.datasets.nih_cxr import FINDINGS, prepare_nih_cxr
from fusiondx.errors import ConfigError, DataError
from tests.datasets.public_layouts import nih_rows

NIH = Path(__file__).resolve().parents[3] / "shared" / "data" / "nih1000_cxr"
BAD = {
    "00000099_000.png": "not found",
    "00000098_000.png": "cannot be decoded",
    "00000001_005.png": "unknown finding",
}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_images_found_anywhere_and_labels(nih_root: Path, tmp_path: Path) -> None:
    result = prepare_nih_cxr(nih_root, tmp_path / "out")
    frame = _read(result.manifest).set_index("case_id")
    good = [r for r in nih_rows() if r["Image Index"] not in BAD]
    assert len(frame) == result.cases == len(good)
    for r in good:
        row = frame.loc[r["Image Index"][:-4]]
        assert (nih_root / row["image"]).is_file() and row["image"].endswith(r["Image Index"])
        found = set(r["Finding Labels"].split("|")) - {"No Finding"}
        assert row["label"] == ("abnormal" if found else "normal")
        assert {f for f in FINDINGS if row[f] == "1"} == found
        assert row["patient_id"] == str(r["Patient ID"])
        assert (row["age"], row["sex"], row["view"]) == (
            f"{r['Patient Age']:.1f}",
            r["Patient Gender"],
            r["View Position"],
        )
    # Both layouts at once: full download's images_001/images/ and the subset's class folders.
    assert {p.split("/")[0] for p in frame["image"]} == {"images_001", "train"}


def test_bad_images_reported(nih_root: Path, tmp_path: Path) -> None:
    result = prepare_nih_cxr(nih_root, tmp_path / "out")
    reasons = dict(result.skipped)
    assert set(reasons) == set(BAD)
    for name, words in BAD.items():
        assert words in reasons[name]
    assert _read(result.skipped_file)["image_index"].tolist() == [r for r, _ in result.skipped]


def test_config_grouped_split_has_both_classes_everywhere(nih_root: Path, tmp_path: Path) -> None:
    result = prepare_nih_cxr(nih_root, tmp_path / "out")
    cfg = load_config(result.config)
    assert cfg.data.patient_column == "patient_id" and cfg.data.split.column is None
    assert cfg.data.root == nih_root.resolve()
    split, y, classes = simulate_split(result.config, result.manifest)
    assert classes == ("normal", "abnormal") and split_gaps(split, y, classes) == []
    frame = _read(result.manifest)
    per_patient = pd.Series(split).groupby(frame["patient_id"].to_numpy()).nunique()
    assert (per_patient == 1).all()


def test_findings_target_keeps_findings_of_enough_patients(nih_root: Path, tmp_path: Path) -> None:
    rows = [r for r in nih_rows() if r["Image Index"] not in BAD]
    patients = {
        f: len({r["Patient ID"] for r in rows if f in r["Finding Labels"].split("|")})
        for f in FINDINGS
    }
    result = prepare_nih_cxr(nih_root, tmp_path / "a", target="findings", min_patients=3)
    task = load_config(result.config).tasks[0]
    assert task.type == "multilabel"
    assert task.classes == [f for f in FINDINGS if patients[f] >= 3] and len(task.classes) > 1
    # A stricter threshold leaves one finding: a binary task on its 0/1 column.
    (only,) = [f for f in FINDINGS if patients[f] >= 4]
    one = load_config(
        prepare_nih_cxr(nih_root, tmp_path / "b", target="findings", min_patients=4).config
    )
    assert (one.tasks[0].label, one.tasks[0].classes) == (only, ["0", "1"])


def test_layout_errors(tmp_path: Path, nih_root: Path) -> None:
    with pytest.raises(DataError, match="Data_Entry_2017"):
        prepare_nih_cxr(tmp_path, tmp_path / "out")
    bad = tmp_path / "bad"
    bad.mkdir()
    pd.DataFrame({"Image Index": ["a.png"], "Labels": ["x"]}).to_csv(
        bad / "Data_Entry_2017.csv", index=False
    )
    with pytest.raises(DataError, match="Finding Labels") as err:
        prepare_nih_cxr(bad, tmp_path / "out")
    assert err.value.file and err.value.file.endswith("Data_Entry_2017.csv")
    with pytest.raises(ConfigError):
        prepare_nih_cxr(nih_root, tmp_path / "out", target="labels")


@pytest.mark.realdata
@pytest.mark.skipif(not NIH.is_dir(), reason="../shared/data/nih1000_cxr not present")
def test_shared_nih1000(tmp_path: Path) -> None:
    result = prepare_nih_cxr(NIH, tmp_path / "nih")
    assert result.cases == 1000 and result.skipped == []
    table = pd.read_csv(next(NIH.glob("Data_Entry_2017*.csv")))
    normal = int((table["Finding Labels"] == "No Finding").sum())
    assert result.label_counts == {"normal": normal, "abnormal": 1000 - normal, "patients": 264}
    assert any("8 in both train/ and test/" in n for n in result.notes)
    split, y, classes = simulate_split(result.config, result.manifest)
    assert split_gaps(split, y, classes) == []
    frame = _read(result.manifest)
    assert pd.Series(split).groupby(frame["patient_id"].to_numpy()).nunique().max() == 1
    assert np.isclose((split == "test").mean(), 0.15, atol=0.05)
