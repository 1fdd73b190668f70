"""Train / val / test assignment: stratified by label, grouped by patient, or from a column."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from fusiondx.errors import DataError, line_of

SPLITS = ("train", "val", "test")
# Classes with fewer cases cannot be stratified three ways by the shuffle split.
_RARE = 6
_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def splits_from_column(df: pd.DataFrame, column: str, id_column: str) -> np.ndarray:
    """Read the split of each case from a column (train/val/test; valid, validation, dev accepted)."""
    out = np.empty(len(df), dtype=object)
    for pos, v in enumerate(df[column]):
        key = str(v).strip().lower() if isinstance(v, str) else ""
        if key not in _ALIASES:
            raise DataError(
                f"The split value '{v if isinstance(v, str) else ''}' is not train, val or test.",
                row=line_of(pos),
                column=column,
                case_id=str(df[id_column].iloc[pos]),
                fix="use train, val (or valid/validation) or test in every row",
            )
        out[pos] = _ALIASES[key]
    return out.astype(str)


def patient_groups(
    df: pd.DataFrame, column: str | None, ids: pd.Series
) -> tuple[np.ndarray | None, list[str]]:
    """The group of each case for splitting (its patient), and the ids of cases with no patient.

    A blank patient cell is a patient of its own (the group is the case id), not one patient
    shared by every blank case, which would put them all in a single split.
    """
    if not column:
        return None, []
    blank = df[column].isna().to_numpy()
    # The NUL prefix keeps a case's own group apart from any patient id a cell can hold.
    groups = np.where(
        blank,
        "\0case:" + ids.astype(str).to_numpy().astype(object),
        df[column].astype(str).to_numpy().astype(object),
    )
    return groups.astype(str), [str(i) for i in ids[blank]]


def make_splits(
    strata: np.ndarray,
    fractions: tuple[float, float, float],
    seed: int,
    groups: np.ndarray | None = None,
    stratify: bool = True,
    folds: int | None = None,
    fold: int = 0,
    names: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Assign each case to train/val/test.

    Without groups the fractions are met exactly (up to rounding) by scikit-learn's stratified
    shuffle split. With groups (patient ids) no group is cut: StratifiedGroupKFold picks whole
    groups for test, then for val, so fractions are met approximately. With ``folds``, test is
    fold ``fold`` of a stratified (grouped) k-fold split, so the k test folds cover every case
    once; val is then drawn from the other folds the same way.

    A held-out part (test or val) drawn as a grouped fold is the first of the candidate folds
    that holds every class, so a rare class is not left out by chance. ``names`` (stratum ->
    class name) marks the strata as classes that every held-out part must hold (a split
    without one would leave its metric undefined): then a class with fewer cases or patients
    than folds, or a held-out part that cannot hold every class, is a :class:`DataError` naming
    the class and its counts per fold; and without patients, classes too small for the shuffle
    split are placed like groups rather than merged away.
    """
    n = len(strata)
    idx = np.arange(n)
    key = np.asarray(strata).astype(str) if stratify else None
    strict = names is not None and key is not None
    names = names or {}
    _, f_val, f_test = fractions
    out = np.full(n, "train", dtype=object)
    if folds is not None:
        test = _kfold_test(idx, key, groups, folds, fold, seed, names, strict)
        rest = np.setdiff1d(idx, test)
        f_val_rest = min(f_val / (1 - 1 / folds), 0.5)  # val keeps its share of all cases
        val = rest[
            _group_fold(
                None if key is None else key[rest],
                rest if groups is None else groups[rest],
                f_val_rest,
                seed + 1,
                names,
                strict,
                f"the validation part of fold {fold}",
            )
        ]
    elif groups is None and not (strict and _has_rare(key)):
        merged = _mergeable(key) if key is not None else None
        rest, test = train_test_split(idx, test_size=f_test, random_state=seed, stratify=merged)
        strat_rest = None if merged is None else _mergeable(merged[rest])
        _, val = train_test_split(
            rest, test_size=f_val / (1 - f_test), random_state=seed + 1, stratify=strat_rest
        )
    else:
        g = idx if groups is None else groups
        test = _group_fold(key, g, f_test, seed, names, strict, "the test split")
        rest = np.setdiff1d(idx, test)
        val = rest[
            _group_fold(
                None if key is None else key[rest],
                g[rest],
                f_val / (1 - f_test),
                seed + 1,
                names,
                strict,
                "the validation split",
            )
        ]
    out[test] = "test"
    out[val] = "val"
    return out.astype(str)


def _kfold_test(
    idx: np.ndarray,
    key: np.ndarray | None,
    groups: np.ndarray | None,
    folds: int,
    fold: int,
    seed: int,
    names: Mapping[str, str],
    strict: bool,
) -> np.ndarray:
    n_groups = len(np.unique(groups)) if groups is not None else len(idx)
    if n_groups < folds:
        raise DataError(
            f"There are {n_groups} patients or cases, too few for {folds} folds.",
            fix="use fewer folds (data.split.folds) or add cases",
        )
    g = groups if groups is not None else idx
    held = _folds(key, g, folds, seed)
    if strict:
        _check_folds(key, g, held, names)  # type: ignore[arg-type]
    return idx[held[fold]]


def _folds(key: np.ndarray | None, groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Positions held out by each of k stratified, grouped folds."""
    y = key if key is not None else np.zeros(len(groups), dtype=str)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # sklearn warns when a class has fewer members than folds; _check_folds says it better.
        warnings.simplefilter("ignore", UserWarning)
        return [h for _, h in cv.split(np.zeros(len(groups)), y, groups)]


def _check_folds(
    key: np.ndarray, groups: np.ndarray, held: list[np.ndarray], names: Mapping[str, str]
) -> None:
    """Every class in every test fold, or an error with the class's counts per fold."""
    for c in np.unique(key):
        per_fold = [int(np.sum(key[h] == c)) for h in held]
        if min(per_fold) > 0:
            continue
        n_groups = len(np.unique(groups[key == c]))
        name = names.get(str(c), str(c))
        if n_groups < len(held):
            what = (
                f"Class '{name}' has {int(np.sum(key == c))} case(s) in {n_groups} patient(s), "
                f"fewer than the {len(held)} folds"
            )
        else:
            what = f"Class '{name}' cannot be spread over all {len(held)} folds with whole patients"
        raise DataError(
            f"{what}: its cases fall {'/'.join(map(str, per_fold))} across the test folds, so a fold "
            "would be scored without it (its metric undefined there, the pooled comparison unbalanced).",
            fix=f"use at most {max(2, min(n_groups, len(held) - 1))} folds (data.split.folds or --folds), "
            "repeat over seeds on one split instead (--seeds), or add cases of this class",
        )


def _group_fold(
    key: np.ndarray | None,
    groups: np.ndarray,
    frac: float,
    seed: int,
    names: Mapping[str, str],
    strict: bool,
    what: str,
) -> np.ndarray:
    """About ``frac`` of the cases as whole groups (positions into ``groups``): the first of
    ``round(1/frac)`` stratified grouped folds that holds every class, else (not strict) the
    first that holds the most classes."""
    n_groups = len(np.unique(groups))
    k = int(min(max(2, round(1 / frac)), n_groups))
    if k < 2:
        raise DataError(
            "There are too few patients to make train, val and test splits.",
            fix="add cases, or give the split explicitly with data.split.column",
        )
    held = _folds(key, groups, k, seed)
    if key is None:
        return held[0]
    classes = np.unique(key)
    # A part qualifies when it and what remains each hold every class; else the first part that
    # holds the most classes while leaving them all in the rest.
    score = [
        len(np.unique(key[h])) + len(classes) * (len(np.unique(np.delete(key, h))) == len(classes))
        for h in held
    ]
    best = int(np.argmax(score))
    if score[best] == 2 * len(classes) or not strict:
        return held[best]
    c = min(
        classes,
        key=lambda c: sum(bool(np.any(key[h] == c)) for h in held) if np.sum(key == c) > 1 else -1,
    )
    per_fold = [int(np.sum(key[h] == c)) for h in held]
    raise DataError(
        f"{what[0].upper()}{what[1:]} cannot hold a case of class '{names.get(str(c), str(c))}' "
        f"together with every other class: the cases it is drawn from hold {int(np.sum(key == c))} "
        f"of that class in {len(np.unique(groups[key == c]))} patient(s), which fall "
        f"{'/'.join(map(str, per_fold))} across the {k} candidate parts of about {frac:.0%} each.",
        fix="use fewer folds (data.split.folds or --folds), a larger val fraction "
        "(data.split.fractions), repeat over seeds instead (--seeds), or add cases of this class",
    )


def _has_rare(key: np.ndarray | None) -> bool:
    """A class the shuffle split would merge away (see _mergeable)."""
    return key is not None and bool((np.unique(key, return_counts=True)[1] < _RARE).any())


def _mergeable(key: np.ndarray) -> np.ndarray:
    """Strata too small to be split three ways are merged, so stratification cannot fail."""
    key = key.astype(object).copy()
    values, counts = np.unique(key, return_counts=True)
    for v, c in zip(values, counts, strict=True):
        if c < _RARE:
            key[key == v] = "__rare__"
    if np.sum(key == "__rare__") in (1, 2, 3, 4, 5):
        # A lone 'rare' stratum can still be too small: fold it into the largest one.
        key[key == "__rare__"] = values[np.argmax(counts)]
    return key.astype(str)


def check_splits(split: np.ndarray, ids: pd.Series, patients: np.ndarray | None) -> None:
    """Each split non-empty and, with patient ids, no patient in two splits."""
    for s in SPLITS:
        if not np.any(split == s):
            raise DataError(
                f"The {s} split has no cases.",
                fix="add cases, change data.split.fractions, or fix the split column",
            )
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
                fix="put all cases of a patient in one split, or let FusionDx split (drop data.split.column)",
            )
