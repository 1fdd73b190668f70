"""MIMIC-IV adapter: tiny hosp/ + icu/ layout written by the test, and the shared demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import load_config
from fusiondx.datasets._adapter import simulate_split, split_gaps
from fusiondx.datasets._mimic_labs import DEFAULT_LABS
from fusiondx.datasets.mimic_iv import prepare_mimic_iv
from fusiondx.errors import DataError
from tests.datasets.public_layouts import SHARED_DATA, mimic_tables

MIMIC = SHARED_DATA / "mimic_iv_demo"
LABS = list(DEFAULT_LABS)


def _scaled(v: float, lo: float, hi: float) -> float:
    z = (v - (lo + hi) / 2) / ((hi - lo) / 2)
    return float(np.sign(z) * np.log1p(abs(z)))


@pytest.fixture(scope="module")
def prepared(
    mimic_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[object, pd.DataFrame]:
    result = prepare_mimic_iv(mimic_root, tmp_path_factory.mktemp("mimic_out"))
    return result, pd.read_csv(result.manifest, dtype=str, keep_default_na=False).set_index(
        "case_id"
    )


def test_cases_tabular_and_labels(prepared: tuple[object, pd.DataFrame]) -> None:
    result, frame = prepared
    adm = mimic_tables()["hosp/admissions"]
    good = adm[adm["subject_id"].le(100) & adm["admittime"].notna()]
    assert sorted(frame.index.astype(int)) == sorted(good["hadm_id"])
    for r in good.itertuples():
        row = frame.loc[str(r.hadm_id)]
        assert row["patient_id"] == str(r.subject_id)
        assert row["death"] == ("died" if r.hospital_expire_flag else "survived")
        los = (r.dischtime - r.admittime).total_seconds() / 86400
        assert row["long_stay"] == ("long" if los > 7 else "short")
        assert float(row["age"]) == 60 + (r.admittime.year - 2150)
        assert float(row["ed_hours"]) == 3.0
        earlier = good[(good["subject_id"] == r.subject_id) & (good["admittime"] < r.admittime)]
        assert int(row["prior_admissions"]) == len(earlier)
        assert row["icu_in_window"] == ("1" if r.hadm_id == 100 else "0")
    assert dict(result.skipped).keys() == {"99900", "99901"}  # type: ignore[attr-defined]
    assert "hosp/patients" in dict(result.skipped)["99900"]  # type: ignore[attr-defined]


def test_history_holds_earlier_admissions_only(prepared: tuple[object, pd.DataFrame]) -> None:
    _, frame = prepared
    dx = mimic_tables()["hosp/diagnoses_icd"].set_index("hadm_id")
    for hadm, row in frame.iterrows():
        own = f"icd{dx.loc[int(hadm), 'icd_version']}_{dx.loc[int(hadm), 'icd_code']}"
        assert own not in row["history"].split()  # never the outcome admission's own codes
        assert (row["history"] == "none") == (row["prior_admissions"] == "0")
    assert frame.loc["102", "history"] == "icd10_4101 icd9_4100"  # most recent admission first


def test_lab_grid(prepared: tuple[object, pd.DataFrame], mimic_root: Path, tmp_path: Path) -> None:
    result, frame = prepared
    grid = np.load(result.manifest.parent / frame.loc["100", "labs"])  # type: ignore[attr-defined]
    k, n = LABS.index(50983), len(LABS)
    assert grid.shape == (2 * n, 48)  # 30-minute steps over 24 h
    sodium, measured = grid[k], grid[n + k]
    assert np.isnan(sodium[:2]).all()  # before the first value: left for the reader to fill
    np.testing.assert_allclose(
        sodium[2:10], _scaled(141.0, 133, 145), rtol=1e-5
    )  # 1 h, forward filled
    np.testing.assert_allclose(sodium[10:], _scaled(130.0, 133, 145), rtol=1e-5)  # 5 h
    assert np.flatnonzero(measured).tolist() == [2, 10]
    potassium = LABS.index(50971)  # measured at 30 h: outside 24 h, so all zero and never measured
    assert (grid[potassium] == 0).all() and (grid[n + potassium] == 0).all()
    creat = np.load(result.manifest.parent / frame.loc["300", "labs"])[LABS.index(50912)]  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        creat[5:], _scaled(1.0, 0.5, 1.2), rtol=1e-5
    )  # no range: most common one
    longer = prepare_mimic_iv(mimic_root, tmp_path / "48h", hours=48)
    grid48 = np.load(longer.manifest.parent / "labs" / "100.npy")
    assert grid48.shape == (2 * n, 96) and grid48[n + potassium, 60] == 1
    table = pd.read_csv(result.manifest.parent / "labs.csv")  # type: ignore[attr-defined]
    assert table["channel"].tolist() == list(range(2 * n))
    assert table.loc[k, "label"] == "Sodium" and table.loc[n + k, "kind"] == "measured"


def test_config_loads_and_split_has_deaths_everywhere(
    prepared: tuple[object, pd.DataFrame],
) -> None:
    result, _ = prepared
    cfg = load_config(result.config)  # type: ignore[attr-defined]
    labs = cfg.modality("labs")
    assert labs.preprocessing.length == 48 and labs.preprocessing.leads == 2 * len(LABS)  # type: ignore[union-attr]
    assert labs.preprocessing.normalize == "none"  # type: ignore[union-attr]
    assert cfg.data.patient_column == "patient_id" and cfg.data.split.column is None
    split, y, classes = simulate_split(result.config, result.manifest)  # type: ignore[attr-defined]
    assert classes == ("survived", "died") and split_gaps(split, y, classes) == []


def test_layout_errors(mimic_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="hosp/"):
        prepare_mimic_iv(tmp_path, tmp_path / "out")
    partial = tmp_path / "partial"
    shutil.copytree(mimic_root, partial)
    (partial / "hosp" / "labevents.csv.gz").unlink()
    with pytest.raises(DataError, match="labevents"):
        prepare_mimic_iv(partial, tmp_path / "out")


def test_prepare_then_fit_end_to_end(mimic_root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "mimic"
    result = runner.invoke(
        app, ["prepare", "mimic_iv", str(mimic_root), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "fusiondx study" in result.output and "2 skipped" in result.output
    config = out / "mimic_iv.yaml"
    raw = yaml.safe_load(config.read_text())
    raw["train"].update(epochs=1, batch_size=16, early_stopping=None, progress=False, threads=1)
    raw["fusion"]["dim"] = 16
    config.write_text(yaml.safe_dump(raw))
    fit = runner.invoke(app, ["fit", str(config), "--quiet"])
    assert fit.exit_code == 0, fit.output
    run = out / "runs" / raw["name"]
    assert (run / "metrics.json").is_file()
    # The split the adapter checked for deaths is the very split fit made.
    made = pd.read_csv(run / "splits.csv", dtype=str)
    split, _, _ = simulate_split(config, out / "manifest.csv")
    ids = pd.read_csv(out / "manifest.csv", dtype=str)["case_id"]
    assert dict(zip(made.iloc[:, 0], made.iloc[:, 1], strict=True)) == dict(
        zip(ids, split, strict=True)
    )


@pytest.mark.realdata
@pytest.mark.skipif(not MIMIC.is_dir(), reason="../shared/data/mimic_iv_demo not present")
def test_shared_mimic_demo(tmp_path: Path) -> None:
    result = prepare_mimic_iv(MIMIC, tmp_path / "mimic")
    assert result.cases == 275 and result.skipped == []
    assert result.label_counts["death=died"] == 15 and result.label_counts["patients"] == 100
    split, y, classes = simulate_split(result.config, result.manifest)
    assert split_gaps(split, y, classes) == []
    frame = pd.read_csv(result.manifest, dtype=str, keep_default_na=False)
    first = frame["prior_admissions"] == "0"
    assert (frame.loc[first, "history"] == "none").all() and (
        frame.loc[~first, "history"] != "none"
    ).any()
    adm = pd.read_csv(MIMIC / "hosp" / "admissions.csv.gz", parse_dates=["admittime", "dischtime"])
    long = ((adm["dischtime"] - adm["admittime"]).dt.total_seconds() / 86400 > 7).sum()
    assert (frame["long_stay"] == "long").sum() == long
