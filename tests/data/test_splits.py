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


@pytest.mark.parametrize("grouped", [False, True])
def test_folds_cover_every_case_once_in_test(grouped: bool) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300).astype(str)
    groups = np.repeat(np.arange(150), 2) if grouped else None
    tests = [make_splits(y, (0.7, 0.15, 0.15), seed=3, groups=groups, folds=5, fold=f) for f in range(5)]
    in_test = np.stack([s == "test" for s in tests])
    assert (in_test.sum(axis=0) == 1).all(), "each case is in exactly one test fold"
    for s in tests:
        assert 0.12 < np.mean(s == "val") < 0.18 and set(np.unique(s)) == {"train", "val", "test"}
        if grouped:
            for split in ("train", "val", "test"):
                assert not set(groups[s == split]) & set(groups[s != split])


def test_too_few_cases_for_the_folds_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="too few for 10 folds"):
        make_splits(np.array(["a", "b"] * 3), (0.7, 0.15, 0.15), seed=0, folds=10, fold=0)
