"""PTB-XL adapter: tiny official layout written by the test, and the shared 500-record subset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusiondx.config import load_config
from fusiondx.datasets.ptbxl import SUPERCLASSES, prepare_ptbxl
from fusiondx.errors import ConfigError, DataError
from tests.datasets.public_layouts import PTBXL_BROKEN, PTBXL_RECORDS, SCP, SHARED_DATA

PTBXL = SHARED_DATA / "ptbxl500"


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _expected_classes(codes: dict[str, float], column: str) -> set[str]:
    table = SCP[SCP["diagnostic"] == 1] if column == "diagnostic_class" else SCP[SCP[column] == 1]
    return {
        (table.loc[c, "diagnostic_class"] if column == "diagnostic_class" else c)
        for c in codes
        if c in table.index
    }


def test_superclasses_splits_and_tabular(ptbxl_root: Path, tmp_path: Path) -> None:
    result = prepare_ptbxl(ptbxl_root, tmp_path / "out")
    frame = _read(result.manifest)
    good = [i for i in PTBXL_RECORDS if i not in PTBXL_BROKEN]
    assert frame["case_id"].tolist() == [str(i) for i in good]
    assert result.cases == len(good)
    for eid in good:
        row = frame[frame["case_id"] == str(eid)].iloc[0]
        patient, fold, codes = PTBXL_RECORDS[eid]
        want = _expected_classes(codes, "diagnostic_class")
        assert {c for c in SUPERCLASSES if row[c] == "1"} == want
        assert row["labels"] == (";".join(c for c in SUPERCLASSES if c in want) or "none")
        assert row["split"] == ("train" if fold <= 8 else "val" if fold == 9 else "test")
        assert row["patient_id"] == str(patient)
        assert row["ecg"] == f"records100/00000/{eid:05d}_lr.hea"
        assert (ptbxl_root / row["ecg"]).is_file()
        assert row["height"] == ("" if eid % 3 == 0 else "170.0")  # real missingness stays empty
        assert row["sex"] == ("female" if eid % 2 else "male")
    assert frame.set_index("case_id").loc["3", "age"] == "90.0"  # PTB-XL's 300 = "over 89"
    assert frame.set_index("case_id").loc["5", "baseline_drift"] == "1"
    assert frame.set_index("case_id").loc["6", "extra_beats"] == "1"
    assert set(frame["static_noise"]) == {"0"}
    counts = {
        c: sum(c in _expected_classes(PTBXL_RECORDS[i][2], "diagnostic_class") for i in good)
        for c in SUPERCLASSES
    }
    assert result.label_counts == counts


def test_bad_records_are_reported_not_fatal(ptbxl_root: Path, tmp_path: Path) -> None:
    result = prepare_ptbxl(ptbxl_root, tmp_path / "out")
    skipped = pd.read_csv(result.skipped_file, dtype=str)
    assert skipped["ecg_id"].tolist() == [str(i) for i in PTBXL_BROKEN]
    reasons = dict(zip(skipped["ecg_id"], skipped["reason"], strict=True))
    assert "00012_lr.dat" in reasons["12"] and "missing" in reasons["12"]
    assert "not found" in reasons["13"]
    assert "scp_codes" in reasons["14"]


def test_config_loads_and_uses_official_split(ptbxl_root: Path, tmp_path: Path) -> None:
    result = prepare_ptbxl(ptbxl_root, tmp_path / "out")
    cfg = load_config(result.config)
    assert cfg.data.manifest == result.manifest
    assert cfg.data.root == ptbxl_root.resolve()
    assert cfg.data.split.column == "split" and cfg.data.patient_column == "patient_id"
    assert cfg.tasks[0].type == "multilabel" and cfg.tasks[0].label == list(SUPERCLASSES)
    assert {m.name for m in cfg.modalities} == {"ecg", "meta", "report"}
    assert cfg.modality("ecg").preprocessing.leads == 12  # type: ignore[union-attr]
    assert cfg.study.seeds == 3
    no_report = prepare_ptbxl(ptbxl_root, tmp_path / "b", report=False)
    assert "report" not in {m.name for m in load_config(no_report.config).modalities}


def test_unlabelled_kept_or_dropped(ptbxl_root: Path, tmp_path: Path) -> None:
    unlabelled = [
        i
        for i, (_, _, c) in PTBXL_RECORDS.items()
        if i not in PTBXL_BROKEN and not _expected_classes(c, "diagnostic_class")
    ]
    assert unlabelled  # the fixture has one (record 10: only form and rhythm statements)
    kept = _read(prepare_ptbxl(ptbxl_root, tmp_path / "a").manifest)
    assert kept.set_index("case_id").loc[[str(i) for i in unlabelled], "labels"].eq("none").all()
    dropped = prepare_ptbxl(ptbxl_root, tmp_path / "b", drop_unlabelled=True)
    assert dropped.cases == len(kept) - len(unlabelled)
    assert {r for r, _ in dropped.skipped} >= {str(i) for i in unlabelled}


def test_likelihood_threshold(ptbxl_root: Path, tmp_path: Path) -> None:
    # NDT is listed with likelihood 0 in record 4: counted by default (as the benchmark does).
    default = _read(prepare_ptbxl(ptbxl_root, tmp_path / "a").manifest).set_index("case_id")
    strict = _read(prepare_ptbxl(ptbxl_root, tmp_path / "b", min_likelihood=1).manifest).set_index(
        "case_id"
    )
    assert default.loc["4", "STTC"] == "1" and strict.loc["4", "STTC"] == "0"
    assert strict.loc["5", "STTC"] == "1"


def test_rhythm_statements_with_min_count(ptbxl_root: Path, tmp_path: Path) -> None:
    good = [i for i in PTBXL_RECORDS if i not in PTBXL_BROKEN]
    counts = {c: sum(c in PTBXL_RECORDS[i][2] for i in good) for c in ("SR", "AFIB")}
    both = prepare_ptbxl(
        ptbxl_root, tmp_path / "a", labels="rhythm", min_count=min(counts.values())
    )
    task = load_config(both.config).tasks[0]
    assert (task.type, task.classes) == ("multilabel", sorted(counts))
    assert both.label_counts == counts
    # A threshold between the two counts leaves one statement: a binary task on its column.
    one = prepare_ptbxl(ptbxl_root, tmp_path / "b", labels="rhythm", min_count=max(counts.values()))
    task = load_config(one.config).tasks[0]
    rare = min(counts, key=counts.__getitem__)
    assert (task.label, task.classes) == (max(counts, key=counts.__getitem__), ["0", "1"])

    def left_out(notes: list[str]) -> bool:
        return any("left out" in n and rare in n for n in notes)

    assert left_out(one.notes) and not left_out(both.notes)


def test_layout_errors(ptbxl_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="scp_statements.csv") as err:
        prepare_ptbxl(tmp_path, tmp_path / "out")
    assert err.value.fix and "records100" in err.value.fix
    with pytest.raises(DataError, match="records500") as err:
        prepare_ptbxl(ptbxl_root, tmp_path / "out", records=500)
    broken = tmp_path / "broken"
    shutil.copytree(ptbxl_root, broken)
    pd.read_csv(broken / "ptbxl_database.csv").drop(columns=["strat_fold"]).to_csv(
        broken / "ptbxl_database.csv", index=False
    )
    with pytest.raises(DataError, match="strat_fold"):
        prepare_ptbxl(broken, tmp_path / "out")
    with pytest.raises(ConfigError):
        prepare_ptbxl(ptbxl_root, tmp_path / "out", labels="diagnosis")
    with pytest.raises(DataError, match="dataset's own folder"):
        prepare_ptbxl(ptbxl_root, ptbxl_root)


@pytest.mark.realdata
@pytest.mark.skipif(not PTBXL.is_dir(), reason="../shared/data/ptbxl500 not present")
def test_shared_ptbxl500(tmp_path: Path) -> None:
    result = prepare_ptbxl(PTBXL, tmp_path / "ptbxl")
    assert result.cases == 500 and result.skipped == []
    assert result.label_counts == {"NORM": 297, "MI": 73, "STTC": 96, "CD": 78, "HYP": 40}
    frame = _read(result.manifest)
    assert frame["patient_id"].nunique() == 466
    db = pd.read_csv(PTBXL / "ptbxl_database.csv")
    want = np.where(db["strat_fold"] <= 8, "train", np.where(db["strat_fold"] == 9, "val", "test"))
    assert frame["split"].tolist() == want.tolist()
    assert frame["height"].eq("").sum() == db["height"].isna().sum()
    cfg = load_config(result.config)
    assert cfg.data.root == PTBXL.resolve()
