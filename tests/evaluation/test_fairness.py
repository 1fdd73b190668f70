"""Subgroup metrics (``fusiondx.evaluation.fairness``): gaps that are planted are found, the
fairlearn differences are what a hand count gives, and awkward subgroups are reported, not
crashed on."""

from __future__ import annotations

import numpy as np
import pytest

from fusiondx.config.fairness import BandConfig, FairnessConfig
from fusiondx.evaluation.fairness import subgroup_metrics

CLASSES = ["healthy", "disease"]
METRICS = ["auroc", "accuracy", "sensitivity", "specificity"]


def _table(y, probs, preds, groups, min_size=1, metrics=METRICS):  # type: ignore[no-untyped-def]
    return subgroup_metrics(
        np.asarray(y),
        [np.asarray(probs, dtype=float)],
        [np.asarray(preds)],
        np.asarray(groups),
        task_type="binary",
        classes=CLASSES,
        metrics=metrics,
        min_size=min_size,
        n_boot=200,
    )


def test_a_planted_subgroup_gap_is_found() -> None:
    """Predictions are informative for group A and noise for group B: the AUROC gap names
    them, and B's interval lies below A's."""
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    g = np.where(np.arange(n) % 2 == 0, "A", "B")
    p = np.where(
        g == "A", np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.15, n), 0, 1), rng.random(n)
    )
    out = _table(y, p, (p >= 0.5).astype(int), g, min_size=30)
    gap = out["gaps"]["auroc"]
    assert gap["best"] == "A" and gap["worst"] == "B" and gap["value"] > 0.3
    rows = {r["group"]: r for r in out["groups"]}
    assert rows["B"]["metrics"]["auroc"]["high"] < rows["A"]["metrics"]["auroc"]["low"]
    assert out["equalized_odds_difference"]["value"] > 0.2


def test_fairlearn_differences_equal_a_hand_count() -> None:
    # group a: y 1 1 0 0, pred 1 0 0 0 -> selection 1/4, TPR 1/2, FPR 0
    # group b: y 1 1 0 0, pred 1 1 1 0 -> selection 3/4, TPR 1,   FPR 1/2
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    pred = [1, 0, 0, 0, 1, 1, 1, 0]
    g = ["a"] * 4 + ["b"] * 4
    out = _table(y, np.asarray(pred, dtype=float), pred, g)
    assert out["demographic_parity_difference"]["value"] == pytest.approx(0.75 - 0.25)
    assert out["equalized_odds_difference"]["value"] == pytest.approx(max(1 - 0.5, 0.5 - 0))
    by = out["fairlearn_by_group"]
    assert by["a"] == pytest.approx({"selection_rate": 0.25, "tpr": 0.5, "fpr": 0.0})
    assert by["b"] == pytest.approx({"selection_rate": 0.75, "tpr": 1.0, "fpr": 0.5})
    rows = {r["group"]: r for r in out["groups"]}
    assert rows["a"]["metrics"]["accuracy"]["mean"] == pytest.approx(3 / 4)
    assert rows["b"]["metrics"]["sensitivity"]["mean"] == pytest.approx(1.0)
    assert rows["b"]["metrics"]["specificity"]["mean"] == pytest.approx(0.5)


def test_a_one_class_subgroup_is_undefined_not_a_crash() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[rng.integers(0, 2, 60), np.zeros(40, dtype=int)]
    p = rng.random(100)
    g = np.r_[np.full(60, "mixed"), np.full(40, "healthy_only")]
    out = _table(y, p, (p >= 0.5).astype(int), g, min_size=10)
    row = next(r for r in out["groups"] if r["group"] == "healthy_only")
    assert row["metrics"]["auroc"] is None and "only one class" in row["undefined"]["auroc"]
    assert (
        row["metrics"]["sensitivity"] is None
        and "no disease case" in row["undefined"]["sensitivity"]
    )
    assert row["metrics"]["specificity"] is not None  # defined: it has negatives
    assert out["gaps"]["auroc"]["value"] is None  # one defined subgroup is no gap
    # Equalised odds needs both classes in a subgroup; demographic parity does not.
    assert out["equalized_odds_difference"] is None
    assert out["demographic_parity_difference"]["value"] is not None


def test_small_subgroups_are_flagged_and_left_out_of_gaps() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 130)
    g = np.array(["big1"] * 60 + ["big2"] * 60 + ["tiny"] * 10)
    p = np.where(g == "tiny", 1 - y, rng.random(130))  # the tiny group is perfectly wrong
    out = _table(y, p, (p >= 0.5).astype(int), g, min_size=30)
    rows = {r["group"]: r for r in out["groups"]}
    assert rows["tiny"]["small"] and not rows["big1"]["small"]
    assert rows["tiny"]["metrics"]["auroc"]["mean"] == pytest.approx(0.0)  # shown all the same
    assert "tiny" not in (out["gaps"]["auroc"]["best"], out["gaps"]["auroc"]["worst"])
    assert set(out["fairlearn_by_group"]) == {"big1", "big2"}


def test_bands_cut_numbers_into_labelled_groups() -> None:
    band = BandConfig(column="age", edges=[40, 65])
    assert band.labels() == ["<40", "40-64", ">=65"]
    assert BandConfig(column="bmi", edges=[18.5, 25]).labels() == ["<18.5", "18.5-<25", ">=25"]
    with pytest.raises(ValueError, match="increase"):
        BandConfig(column="age", edges=[65, 40])
    with pytest.raises(ValueError, match="does not list"):
        FairnessConfig(columns=["sex"], bands={"age_band": {"column": "age", "edges": [40]}})
