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
    assert np.array_equal(
        make_splits(y, (0.7, 0.15, 0.15), 1), make_splits(y, (0.7, 0.15, 0.15), 1)
    )
    assert not np.array_equal(
        make_splits(y, (0.7, 0.15, 0.15), 1), make_splits(y, (0.7, 0.15, 0.15), 2)
    )


def test_rare_classes_do_not_break_stratification() -> None:
    y = np.array(["common"] * 95 + ["rare"] * 3 + ["rarer"] * 2)
    s = make_splits(y, (0.7, 0.15, 0.15), seed=0)
    assert set(s) == {"train", "val", "test"}


def test_split_column_aliases_and_bad_values() -> None:
    df = pd.DataFrame(
        {"id": ["a", "b", "c", "d"], "split": ["train", "Valid", "TEST", "validation"]}
    )
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
    tests = [
        make_splits(y, (0.7, 0.15, 0.15), seed=3, groups=groups, folds=5, fold=f) for f in range(5)
    ]
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


def _rare_cohort(n_rare: int = 5, n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cases of which ``n_rare`` negatives, some patients with two cases (like the 40-case
    real cohort where the negatives once fell 2/0/1/2/0 across five test folds)."""
    rng = np.random.default_rng(seed)
    groups = np.array([f"p{g}" for g in [*range(n - 8), *rng.integers(0, n - 8, 8)]])
    single = np.flatnonzero(pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy() == 1)
    y = np.zeros(n, dtype=int)
    y[rng.choice(single, n_rare, replace=False)] = 1  # one case per patient: as many patients
    return y.astype(str), groups


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("grouped", [False, True])
def test_a_rare_class_is_spread_over_every_test_fold_and_every_validation_part(
    seed: int, grouped: bool
) -> None:
    y, groups = _rare_cohort(seed=seed)
    names = {"0": "positive", "1": "negative"}
    splits = [
        make_splits(
            y,
            (0.7, 0.15, 0.15),
            seed=seed,
            groups=groups if grouped else None,
            folds=5,
            fold=f,
            names=names,
        )
        for f in range(5)
    ]
    assert [int(np.sum((s == "test") & (y == "1"))) for s in splits] == [1, 1, 1, 1, 1]
    for s in splits:
        assert np.any((s == "val") & (y == "1")), "every validation part holds the rare class"
        assert np.any((s == "train") & (y == "1"))


def test_without_class_names_rare_classes_are_still_placed_in_every_fold() -> None:
    y, groups = _rare_cohort()
    splits = [
        make_splits(y, (0.7, 0.15, 0.15), seed=0, groups=groups, folds=5, fold=f) for f in range(5)
    ]
    assert [int(np.sum((s == "test") & (y == "1"))) for s in splits] == [1, 1, 1, 1, 1]


def test_a_class_rarer_than_the_folds_is_refused_with_its_counts_per_fold() -> None:
    y, groups = _rare_cohort(n_rare=3)
    with pytest.raises(DataError) as info:
        make_splits(
            y,
            (0.7, 0.15, 0.15),
            seed=0,
            groups=groups,
            folds=5,
            fold=0,
            names={"0": "positive", "1": "negative"},
        )
    msg = str(info.value)
    assert "Class 'negative' has 3 case(s) in 3 patient(s), fewer than the 5 folds" in msg
    counts = msg.split("fall ")[1].split(" ")[0].split("/")
    assert len(counts) == 5 and sorted(map(int, counts)) == [0, 0, 1, 1, 1]
    assert "at most 3 folds" in msg and "--seeds" in msg


def test_a_validation_part_that_cannot_hold_every_class_is_refused() -> None:
    # Two negatives, two folds: each test fold takes one, and the one left over cannot be in
    # both the validation part and the training part of that fold.
    y = np.array(["0"] * 38 + ["1"] * 2)
    with pytest.raises(
        DataError,
        match="validation part of fold 0 cannot hold a case of class "
        "'negative' together with every other class",
    ) as info:
        make_splits(
            y, (0.7, 0.15, 0.15), seed=0, folds=2, fold=0, names={"0": "positive", "1": "negative"}
        )
    assert "--seeds" in str(info.value)


def test_a_made_split_holds_every_class_in_val_and_test_when_a_class_is_rare() -> None:
    y = np.array(["0"] * 45 + ["1"] * 5)
    for seed in range(10):
        s = make_splits(y, (0.7, 0.15, 0.15), seed=seed, names={"0": "a", "1": "b"})
        for part in ("train", "val", "test"):
            assert set(y[s == part]) == {"0", "1"}, (seed, part)
