"""Splits: fractions, stratification, patient grouping, split columns, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusiondx.data.splits import check_splits, make_splits, splits_from_column
from fusiondx.errors import DataError


def test_fractions_and_stratification_without_groups() -> None:
    y = np.array(["0"] * 700 + ["1"] * 300)
    s = make_splits(y, (0.7, 0.15, 0.15), seed=0)
    counts = {k: int((s == k).sum()) for k in ("train", "val", "test")}
    assert counts == {"train": 700, "val": 150, "test": 150}
    for k in ("train", "val", "test"):
        assert (y[s == k] == "1").mean() == pytest.approx(0.3, abs=0.01)


def test_grouped_split_keeps_each_patient_in_one_split() -> None:
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(400), rng.integers(1, 4, 400))
    y = (rng.random(len(patients)) < 0.4).astype(int).astype(str)
    s = make_splits(y, (0.7, 0.15, 0.15), seed=3, groups=patients.astype(str))
    frame = pd.DataFrame({"p": patients, "s": s})
    assert frame.groupby("p")["s"].nunique().max() == 1
    for k, f in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        assert (s == k).mean() == pytest.approx(f, abs=0.05)


def test_same_seed_same_split_other_seed_other_split() -> None:
    y = np.array(["a", "b"] * 100)
    assert np.array_equal(make_splits(y, (0.7, 0.15, 0.15), 1), make_splits(y, (0.7, 0.15, 0.15), 1))
    assert not np.array_equal(make_splits(y, (0.7, 0.15, 0.15), 1), make_splits(y, (0.7, 0.15, 0.15), 2))


def test_rare_classes_do_not_break_stratification() -> None:
    y = np.array(["common"] * 95 + ["rare"] * 3 + ["rarer"] * 2)
    s = make_splits(y, (0.7, 0.15, 0.15), seed=0)
    assert set(s) == {"train", "val", "test"}


def test_split_column_aliases_and_bad_values() -> None:
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "split": ["train", "Valid", "TEST", "validation"]})
    assert list(splits_from_column(df, "split", "id")) == ["train", "val", "test", "val"]
    df.loc[2, "split"] = "holdout"
    with pytest.raises(DataError, match="'holdout'") as info:
        splits_from_column(df, "split", "id")
    assert "case 'c'" in str(info.value) and "line 4" in str(info.value)


def test_empty_split_is_an_error() -> None:
    with pytest.raises(DataError, match="val split has no cases"):
        check_splits(np.array(["train", "test"]), pd.Series(["a", "b"]), None)
