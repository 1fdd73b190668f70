"""Every user error named in the core issue: one clear paragraph naming where and how to fix."""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.data.store import prepare


def _variant(
    cfg: dict[str, Any], cohort: Path, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]
) -> dict[str, Any]:
    df = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    path = cohort / f"bad_{name}.csv"
    edit(df).to_csv(path, index=False)
    out = copy.deepcopy(cfg)
    out["data"]["manifest"] = str(path)
    return out


def _bad_file(cohort: Path, name: str, content: bytes) -> str:
    (cohort / "bad").mkdir(exist_ok=True)
    (cohort / "bad" / name).write_bytes(content)
    return f"bad/{name}"


def _set(col: str, value: str, row: int = 3) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, col] = value
        return df

    return edit


def _expect(cfg: dict[str, Any], *needles: str) -> str:
    with pytest.raises(fusiondx.FusionDxError) as info:
        prepare(fusiondx.load_config(cfg))
    msg = str(info.value)
    assert "Fix:" in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not in: {msg}"
    return msg


def _row_id(cohort: Path, row: int = 3) -> str:
    return pd.read_csv(cohort / "manifest.csv", dtype=str)["case_id"][row]


def _first_with(cohort: Path, col: str) -> int:
    df = pd.read_csv(cohort / "manifest.csv", dtype=str)
    return int(np.flatnonzero(df[col].notna().to_numpy())[0])


def test_missing_file(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "missing", _set("image", "images/nope.png"))
    _expect(cfg, "not found", "nope.png", _row_id(cohort_dir), "line 5", "image")


def test_corrupt_image(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    good = next((cohort_dir / "images").glob("*.png")).read_bytes()
    rel = _bad_file(cohort_dir, "truncated.png", good[: len(good) // 2])
    cfg = _variant(quick_config, cohort_dir, "trunc", _set("image", rel))
    _expect(cfg, "truncated.png", _row_id(cohort_dir))


def test_unreadable_dicom(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    rel = _bad_file(cohort_dir, "garbage.dcm", b"DICM" * 50)
    cfg = _variant(quick_config, cohort_dir, "dicom", _set("image", rel))
    _expect(cfg, "garbage.dcm", _row_id(cohort_dir))


def test_signal_with_wrong_lead_count(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    quick_config["modalities"][1]["preprocessing"]["leads"] = 3
    rel = "bad/two_leads.npy"
    (cohort_dir / "bad").mkdir(exist_ok=True)
    np.save(cohort_dir / rel, np.random.default_rng(0).normal(size=(2, 1000)).astype(np.float32))
    quick_config["modalities"][1]["preprocessing"]["source_rate"] = 100
    cfg = _variant(quick_config, cohort_dir, "leads", _set("ecg", rel))
    _expect(cfg, "2 lead", "expects 3", _row_id(cohort_dir))


def test_signal_too_short(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    rel = "bad/short.npy"
    (cohort_dir / "bad").mkdir(exist_ok=True)
    np.save(cohort_dir / rel, np.random.default_rng(0).normal(size=(3, 100)).astype(np.float32))
    quick_config["modalities"][1]["preprocessing"]["source_rate"] = 100
    cfg = _variant(quick_config, cohort_dir, "short", _set("ecg", rel))
    _expect(cfg, "short.npy", _row_id(cohort_dir))


def test_infinite_lab_value(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "inf", _set("crp", "inf"))
    _expect(cfg, "'inf'", "crp", _row_id(cohort_dir))


def test_text_in_numeric_column(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "text_num", _set("troponin", "high"))
    _expect(cfg, "'high'", "troponin", _row_id(cohort_dir), "categorical")


def test_label_outside_declared_classes(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "label", _set("label", "diseased"))
    _expect(cfg, "'diseased'", "label", _row_id(cohort_dir), "healthy")


def test_empty_manifest(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "empty", lambda df: df.head(0))
    _expect(cfg, "no cases")


def test_duplicate_case_ids(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    def dup(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[7, "case_id"] = df.loc[2, "case_id"]
        return df

    cfg = _variant(quick_config, cohort_dir, "dup", dup)
    _expect(cfg, _row_id(cohort_dir, 2), "[4, 9]", "unique")


def test_path_escaping_the_data_root(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "escape", _set("image", "../../etc/passwd"))
    _expect(cfg, "outside the data root", _row_id(cohort_dir))


def test_training_split_with_a_single_class(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    def one_class_train(df: pd.DataFrame) -> pd.DataFrame:
        df["split"] = np.where(df["label"] == "disease", "test", "train")
        df.loc[df.index[:10], "split"] = "val"
        return df

    quick_config["data"]["split"] = {"column": "split"}
    quick_config["data"]["patient_column"] = None
    cfg = _variant(quick_config, cohort_dir, "oneclass", one_class_train)
    _expect(cfg, "single class", "healthy")


def test_modality_column_entirely_empty(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    cfg = _variant(quick_config, cohort_dir, "emptycol", lambda df: df.assign(report=""))
    _expect(cfg, "report", "empty for every case")


def test_patient_in_two_splits_from_a_split_column(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    def leak(df: pd.DataFrame) -> pd.DataFrame:
        df["split"] = ["train", "val", "test"] * (len(df) // 3) + ["train"] * (len(df) % 3)
        df.loc[1, "patient_id"] = df.loc[0, "patient_id"]
        return df

    quick_config["data"]["split"] = {"column": "split"}
    cfg = _variant(quick_config, cohort_dir, "leak", leak)
    _expect(cfg, "several splits", "leaks")


def test_config_typo_suggests_the_key(quick_config: dict[str, Any]) -> None:
    quick_config["train"]["epochz"] = 3
    with pytest.raises(fusiondx.ConfigError, match="Did you mean 'epochs'"):
        fusiondx.load_config(quick_config)


def test_unknown_encoder_and_option_suggest_names(quick_config: dict[str, Any]) -> None:
    quick_config["modalities"][0]["encoder"] = {"name": "resnett"}
    with pytest.raises(fusiondx.ConfigError, match="Did you mean 'resnet'"):
        fusiondx.fit(quick_config)
    quick_config["modalities"][0]["encoder"] = {"name": "cnn", "options": {"dropuot": 0.2}}
    with pytest.raises(fusiondx.ConfigError, match="Did you mean 'dropout'"):
        fusiondx.fit(quick_config)


def test_nothing_the_user_gave_is_modified(quick_config: dict[str, Any], cohort_dir: Path) -> None:
    def digest() -> str:
        h = hashlib.sha256()
        for p in sorted(cohort_dir.rglob("*")):
            if p.is_file() and not p.name.startswith("bad"):
                h.update(p.name.encode() + p.read_bytes())
        return h.hexdigest()

    before = digest()
    fusiondx.fit(quick_config)
    assert digest() == before


def test_cli_prints_one_paragraph_and_exits_2(
    quick_config: dict[str, Any], cohort_dir: Path, tmp_path: Path
) -> None:
    import yaml

    cfg = _variant(quick_config, cohort_dir, "cli", _set("image", "images/nope.png"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "nope.png" in result.output and "Fix:" in result.output


def test_wrong_encoder_kind_fails_before_any_file_is_decoded(
    quick_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusiondx.engine import run

    monkeypatch.setattr(run, "prepare", lambda *a, **k: pytest.fail("decoded data first"))
    quick_config["modalities"][1]["encoder"] = {"name": "cnn"}
    with pytest.raises(fusiondx.ConfigError, match="for image data but modality 'ecg' is signal"):
        fusiondx.fit(quick_config)


# --- every problem in one `validate` run, grouped per column; `fit` stops on the first --------


def _validate(cfg: dict[str, Any], tmp_path: Path) -> Any:
    import yaml

    path = tmp_path / "validate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return CliRunner().invoke(app, ["validate", str(path)])


def _many_problems(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[3, "age"], df.loc[8, "age"] = "sixty", "n/a"
    df.loc[5, "crp"], df.loc[9, "crp"] = "<0.5", "high"
    df.loc[6, "label"], df.loc[11, "label"] = "diseased", "sick"
    df.loc[7, "image"] = "images/nope.png"
    return df


def test_validate_lists_every_problem_grouped_per_column(
    quick_config: dict[str, Any], cohort_dir: Path, tmp_path: Path
) -> None:
    cfg = _variant(quick_config, cohort_dir, "many", _many_problems)
    result = _validate(cfg, tmp_path)
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    for heading in (
        "column 'age': 2 problems",
        "column 'crp': 2 problems",
        "column 'label': 2 problems",
        "column 'image': 1 problem",
    ):
        assert heading in out, out
    for row, value in (
        (3, "sixty"),
        (8, "n/a"),
        (5, "<0.5"),
        (9, "high"),
        (6, "diseased"),
        (11, "sick"),
    ):
        line = next(li for li in out.splitlines() if f"'{value}'" in li)
        assert (
            f"case '{_row_id(cohort_dir, row)}'" in line and f"manifest line {row + 2}" in line
        ), line
    assert (
        "nope.png" in out and _row_id(cohort_dir, 7) in out
    )  # files decoded despite the cell problems
    assert out.count("Fix: write a number") == 2  # said once per group, not on every line
    assert out.count("problem(s) in") == 1
    assert f"7 problem(s) in 4 column(s) of {cohort_dir / 'bad_many.csv'}" in out


def test_validate_shows_twenty_problems_per_column_then_counts(
    quick_config: dict[str, Any], cohort_dir: Path, tmp_path: Path
) -> None:
    def bad_crp(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[10:34, "crp"] = "pending"  # 25 rows
        return df

    result = _validate(_variant(quick_config, cohort_dir, "many_crp", bad_crp), tmp_path)
    assert result.exit_code == 2
    listed = [li for li in result.output.splitlines() if "'pending'" in li]
    assert len(listed) == 20
    assert "manifest line 12." in listed[0] and "manifest line 31." in listed[-1]
    assert "... and 5 more in column 'crp'" in result.output
    assert "25 problem(s) in 1 column(s)" in result.output


def test_fit_stops_before_decoding_on_the_first_problem_and_counts_the_others(
    quick_config: dict[str, Any], cohort_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusiondx.data import store

    monkeypatch.setattr(store, "build_store", lambda *a, **k: pytest.fail("decoded files first"))
    cfg = _variant(quick_config, cohort_dir, "many_fit", _many_problems)
    with pytest.raises(fusiondx.DataError) as info:
        fusiondx.fit(cfg)
    msg = str(info.value)
    assert msg.startswith("The label 'diseased' is not one of the declared classes"), msg
    assert "5 other problem(s) too" in msg and "'age'" in msg and "'crp'" in msg
    assert "`fusiondx validate` lists them all" in msg and "Fix:" in msg
    assert len(info.value.all_errors) == 6  # type: ignore[attr-defined]


def test_missing_column_is_reported_once_and_its_values_not_checked(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df = df.rename(columns={"crp": "CRP", "image": "img"})
        df.loc[4, "CRP"] = "high"
        df.loc[5, "age"] = "old"
        return df

    with pytest.raises(fusiondx.DataError) as info:
        prepare(fusiondx.load_config(_variant(quick_config, cohort_dir, "missing_cols", edit)))
    found = [(e.column, e.what) for e in info.value.all_errors]  # type: ignore[attr-defined]
    assert [c for c, _ in found] == ["image", "crp", "age"], found
    assert "no column 'crp'" in found[1][1]


def test_all_empty_tabular_column_is_an_error_without_numpy_warnings(
    quick_config: dict[str, Any], cohort_dir: Path, tmp_path: Path
) -> None:
    cfg = _variant(quick_config, cohort_dir, "empty_crp", lambda df: df.assign(crp=""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msg = _expect(
            cfg,
            "Column 'crp' of tabular modality 'labs' is empty for every case",
            "remove it from modalities[labs].columns",
        )
        result = _validate(cfg, tmp_path)
    assert "labs' is empty" in msg
    assert result.exit_code == 2 and "column 'crp': 1 problem" in result.output
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [
        str(w.message) for w in caught
    ]


def test_column_empty_only_in_train_is_a_note_without_numpy_warnings(
    quick_config: dict[str, Any], cohort_dir: Path, tmp_path: Path
) -> None:
    def train_without_troponin(df: pd.DataFrame) -> pd.DataFrame:
        df["split"] = np.array(["train", "train", "train", "val", "test"])[np.arange(len(df)) % 5]
        df.loc[df["split"] == "train", "troponin"] = ""
        return df

    quick_config["data"]["split"] = {"column": "split"}
    quick_config["data"]["patient_column"] = None
    cfg = _variant(quick_config, cohort_dir, "empty_train", train_without_troponin)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _validate(cfg, tmp_path)
    assert result.exit_code == 0, result.output
    assert (
        "note: column 'troponin' of modality 'labs' has no value in any training case"
        in result.output
    )
    assert "crp" not in result.output.split("note:")[1]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [
        str(w.message) for w in caught
    ]
