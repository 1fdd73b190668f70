"""Train / val / test assignment: stratified by label, grouped by patient, or from a column."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from fusiondx.data.manifest import line_of
from fusiondx.errors import DataError

SPLITS = ("train", "val", "test")
_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
            "validation": "val", "dev": "val", "test": "test", "testing": "test"}


def splits_from_column(df: pd.DataFrame, column: str, id_column: str) -> np.ndarray:
    """Read the split of each case from a column (train/val/test; valid, validation, dev accepted)."""
    out = np.empty(len(df), dtype=object)
    for pos, v in enumerate(df[column]):
        key = str(v).strip().lower() if isinstance(v, str) else ""
        if key not in _ALIASES:
            raise DataError(
                f"The split value '{v if isinstance(v, str) else ''}' is not train, val or test.",
                row=line_of(pos), column=column, case_id=str(df[id_column].iloc[pos]),
                fix="use train, val (or valid/validation) or test in every row")
        out[pos] = _ALIASES[key]
    return out.astype(str)


def make_splits(
    strata: np.ndarray,
    fractions: tuple[float, float, float],
    seed: int,
    groups: np.ndarray | None = None,
    stratify: bool = True,
    folds: int | None = None,
    fold: int = 0,
) -> np.ndarray:
    """Assign each case to train/val/test.

    Without groups the fractions are met exactly (up to rounding) by scikit-learn's stratified
    shuffle split. With groups (patient ids) no group is cut: StratifiedGroupKFold picks whole
    groups for test, then for val, so fractions are met approximately. With ``folds``, test is
    fold ``fold`` of a stratified (grouped) k-fold split, so the k test folds cover every case
    once; val is then drawn from the other folds.
    """
    n = len(strata)
    idx = np.arange(n)
    key = _mergeable(strata) if stratify else None
    _, f_val, f_test = fractions
    out = np.full(n, "train", dtype=object)
    if folds is not None:
        test = _kfold_test(idx, key, groups, folds, fold, seed)
        rest = np.setdiff1d(idx, test)
        f_val_rest = min(f_val / (1 - 1 / folds), 0.5)  # val keeps its share of all cases
        if groups is None:
            strat_rest = None if key is None else _mergeable(key[rest])
            _, val = train_test_split(rest, test_size=f_val_rest, random_state=seed + 1, stratify=strat_rest)
        else:
            val = rest[_group_fold(np.arange(len(rest)), None if key is None else key[rest],
                                   groups[rest], f_val_rest, seed + 1)]
    elif groups is None:
        rest, test = train_test_split(idx, test_size=f_test, random_state=seed,
                                      stratify=None if key is None else key)
        strat_rest = None if key is None else _mergeable(key[rest])
        train, val = train_test_split(rest, test_size=f_val / (1 - f_test), random_state=seed + 1,
                                      stratify=strat_rest)
    else:
        test = _group_fold(idx, key, groups, f_test, seed)
        rest = np.setdiff1d(idx, test)
        val_local = _group_fold(np.arange(len(rest)), None if key is None else key[rest],
                                groups[rest], f_val / (1 - f_test), seed + 1)
        val = rest[val_local]
    out[test] = "test"
    out[val] = "val"
    return out.astype(str)


def _kfold_test(idx: np.ndarray, key: np.ndarray | None, groups: np.ndarray | None, folds: int,
                fold: int, seed: int) -> np.ndarray:
    n_groups = len(np.unique(groups)) if groups is not None else len(idx)
    if n_groups < folds:
        raise DataError(f"There are {n_groups} patients or cases, too few for {folds} folds.",
                        fix="use fewer folds (data.split.folds) or add cases")
    y = key if key is not None else np.zeros(len(idx), dtype=str)
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, held = list(cv.split(idx, y, groups if groups is not None else idx))[fold]
    return idx[held]


def _group_fold(idx: np.ndarray, key: np.ndarray | None, groups: np.ndarray, frac: float,
                seed: int) -> np.ndarray:
    n_groups = len(np.unique(groups))
    k = int(min(max(2, round(1 / frac)), n_groups))
    if k < 2:
        raise DataError("There are too few patients to make train, val and test splits.",
                        fix="add cases, or give the split explicitly with data.split.column")
    y = key if key is not None else np.zeros(len(idx), dtype=str)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    _, held = next(cv.split(idx, y, groups))
    return idx[held]


def _mergeable(key: np.ndarray) -> np.ndarray:
    """Strata too small to be split three ways are merged, so stratification cannot fail."""
    key = key.astype(object).copy()
    values, counts = np.unique(key, return_counts=True)
    for v, c in zip(values, counts, strict=True):
        if c < 6:
            key[key == v] = "__rare__"
    if np.sum(key == "__rare__") in (1, 2, 3, 4, 5):
        # A lone 'rare' stratum can still be too small: fold it into the largest one.
        key[key == "__rare__"] = values[np.argmax(counts)]
    return key.astype(str)


def check_splits(split: np.ndarray, ids: pd.Series, patients: np.ndarray | None) -> None:
    """Each split non-empty and, with patient ids, no patient in two splits."""
    for s in SPLITS:
        if not np.any(split == s):
            raise DataError(f"The {s} split has no cases.",
                            fix="add cases, change data.split.fractions, or fix the split column")
    if patients is not None:
        frame = pd.DataFrame({"p": patients, "s": split})
        shared = frame.groupby("p")["s"].nunique()
        bad = shared[shared > 1]
        if len(bad):
            p = bad.index[0]
            cases = list(ids[frame["p"] == p])
            raise DataError(
                f"Patient '{p}' has cases in several splits ({', '.join(map(str, cases))}), which leaks "
                f"test information into training ({len(bad)} patient(s) in all).",
                case_id=str(cases[0]),
                fix="put all cases of a patient in one split, or let FusionDx split (drop data.split.column)")
