"""Label subsampling and training-time missingness: only the training cases change."""

from __future__ import annotations

import numpy as np
import pytest

from fusiondx.data.protocols import UNUSED, remove_modalities, subsample_labels


def _cohort(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    strata = rng.choice(["a", "b"], size=n, p=[0.85, 0.15])
    groups = np.array([f"p{i // 2}" for i in range(n)])  # two cases per patient
    strata[1::2] = strata[0::2]
    return split, strata, groups


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_subsample_keeps_val_test_whole_patients_and_strata(fraction: float) -> None:
    split, strata, groups = _cohort()
    out = subsample_labels(split, strata, groups, fraction, seed=1)
    assert (out[split != "train"] == split[split != "train"]).all()
    train = split == "train"
    kept = out == "train"
    assert set(np.unique(out[train])) <= {"train", UNUSED}
    for g in np.unique(groups[train]):
        assert len(set(out[train & (groups == g)])) == 1  # a patient is kept or left out whole
    for s in ("a", "b"):
        n_groups = len(np.unique(groups[train & (strata == s)]))
        got = len(np.unique(groups[kept & (strata == s)]))
        assert got == max(1, int(np.ceil(fraction * n_groups)))


def test_subsample_is_nested_and_seeded() -> None:
    split, strata, groups = _cohort()
    small = subsample_labels(split, strata, groups, 0.1, seed=3) == "train"
    large = subsample_labels(split, strata, groups, 0.3, seed=3) == "train"
    assert (large[small]).all() and large.sum() > small.sum()
    other = subsample_labels(split, strata, groups, 0.3, seed=4) == "train"
    assert not (other == large).all()
    assert (subsample_labels(split, strata, groups, 1.0, seed=3) == split).all()


def test_remove_modalities_touches_train_only_and_never_empties_a_case() -> None:
    split, _, _ = _cohort()
    rng = np.random.default_rng(5)
    mask = rng.random((len(split), 3)) < 0.8
    mask[0] = [False, False, False]
    out = remove_modalities(mask, split, 0.6, seed=2)
    assert (out[split != "train"] == mask[split != "train"]).all()
    assert not (out & ~mask).any()  # nothing absent becomes present
    train = split == "train"
    assert (out[train].any(axis=1) == mask[train].any(axis=1)).all()
    share = 1 - out[train].sum() / mask[train].sum()
    assert 0.45 < share < 0.65
    assert (remove_modalities(mask, split, 0.0, seed=2) == mask).all()
