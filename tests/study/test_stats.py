"""Study statistics: metrics equal metrics.py, bootstrap CIs, paired differences, DeLong."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from fusiondx.evaluation.bootstrap import bootstrap_indices, paired_difference, pooled_ci
from fusiondx.evaluation.classification import (
    METRICS,
    metric_replicates,
    metric_value,
    scorer,
    strata,
)
from fusiondx.evaluation.delong import delong_test
from fusiondx.evaluation.metrics import classification_metrics

TASKS = ("binary", "multiclass", "multilabel")


def _ci(name: str, y: np.ndarray, seeds: list, task: str, **kw) -> dict:
    """``pooled_ci`` of a classification metric, one probability array per seed."""
    return pooled_ci([scorer(name, y, p, task) for p in seeds], len(y), strata(y, task), **kw)


def _diff(name: str, y: np.ndarray, a: list, b: list, task: str, **kw) -> dict:
    """``paired_difference`` of a classification metric, one probability array per seed."""
    return paired_difference(
        [scorer(name, y, p, task) for p in a],
        [scorer(name, y, p, task) for p in b],
        len(y),
        strata(y, task),
        **kw,
    )


def _data(task: str, n: int, seed: int, k: int = 3, ties: bool = False):
    """Targets and informative but imperfect probabilities; all classes present for n >= 60."""
    rng = np.random.default_rng(seed)
    y = (
        rng.integers(0, 2, (n, k))
        if task == "multilabel"
        else rng.integers(0, 2 if task == "binary" else k, n)
    )
    return y, _probs_for(task, y, seed + 1000, k, ties)


def _probs_for(task: str, y: np.ndarray, seed: int, k: int = 3, ties: bool = False) -> np.ndarray:
    """A model's probabilities for targets y (another seed: another model of the same kind)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    if task == "multiclass":
        p = rng.dirichlet(np.ones(k), n) + 0.8 * np.eye(k)[y]
        p /= p.sum(axis=1, keepdims=True)
    else:
        p = np.clip(0.35 * y + 0.65 * rng.random(y.shape), 0, 1)
    if ties:  # many equal scores, and probabilities exactly at the 0.5 threshold
        p = np.round(p, 1)
    return p


def _reference(task: str, y: np.ndarray, p: np.ndarray) -> dict:
    probs = torch.tensor(p[:, None] if task == "binary" else p)
    return classification_metrics(probs, torch.tensor(y), task, 2 if task == "binary" else 3)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("task", TASKS)
def test_every_metric_equals_classification_metrics(task: str, ties: bool) -> None:
    for seed in range(3):
        y, p = _data(task, 120, seed, ties=ties)
        ref = _reference(task, y, p)
        for name in METRICS:
            got = metric_value(name, y, p, task)
            if name == "sensitivity" and task != "binary":
                assert math.isnan(got)
                continue
            assert got == pytest.approx(ref[name], abs=1e-6), (task, ties, name)


def test_binary_accepts_n_by_1_probs_and_one_class_gives_nan_auroc() -> None:
    y, p = _data("binary", 80, 0)
    assert metric_value("auroc", y, p[:, None], "binary") == metric_value("auroc", y, p, "binary")
    ones = np.ones(10, dtype=int)
    p10 = np.linspace(0.1, 0.9, 10)
    assert math.isnan(metric_value("auroc", ones, p10, "binary"))
    assert math.isnan(metric_value("auprc", ones, p10, "binary"))
    assert metric_value("sensitivity", ones, p10, "binary") == pytest.approx(0.5)


def test_multiclass_with_an_absent_class() -> None:
    # Class 2 is never the truth; the probabilities make it predicted for no case either, so
    # torchmetrics leaves it out of the macro average of the threshold metrics.
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 60)
    p = np.column_stack(
        [rng.random(60) + 0.6 * (y == 0), rng.random(60) + 0.6 * (y == 1), np.zeros(60)]
    )
    p /= p.sum(axis=1, keepdims=True)
    ref = _reference("multiclass", y, p)
    for name in ("precision", "recall", "f1", "specificity", "balanced_accuracy", "auprc"):
        assert metric_value(name, y, p, "multiclass") == pytest.approx(ref[name], abs=1e-6), name
    # AUROC: the absent class is undefined and left out (torchmetrics would count it as 0).
    two = np.mean([metric_value("auroc", (y == k).astype(int), p[:, k], "binary") for k in (0, 1)])
    assert metric_value("auroc", y, p, "multiclass") == pytest.approx(two, abs=1e-9)


def test_bad_inputs_raise() -> None:
    y, p = _data("binary", 20, 0)
    with pytest.raises(ValueError, match="unknown metric"):
        metric_value("mcc", y, p, "binary")
    with pytest.raises(ValueError, match="unknown task_type"):
        metric_value("auroc", y, p, "regression")
    with pytest.raises(ValueError, match="cases"):
        metric_value("auroc", y, p[:10], "binary")


@pytest.mark.parametrize("task", TASKS)
def test_replicates_equal_a_slow_loop(task: str) -> None:
    y, p = _data(task, 90, 4, ties=True)
    idx = bootstrap_indices(90, 6, seed=11)
    for name in METRICS:
        fast = metric_replicates(name, y, p, task, idx)
        slow = np.array([metric_value(name, y[i], p[i], task) for i in idx])
        assert fast.shape == (6,)
        np.testing.assert_allclose(fast, slow, atol=1e-12, equal_nan=True, err_msg=name)


def test_replicates_equal_classification_metrics_on_a_resample() -> None:
    y, p = _data("multiclass", 100, 5)
    i = bootstrap_indices(100, 1, seed=2)[0]
    ref = _reference("multiclass", y[i], p[i])
    for name in ("auroc", "auprc", "f1", "balanced_accuracy"):
        got = metric_replicates(name, y, p, "multiclass", i[None, :])[0]
        assert got == pytest.approx(ref[name], abs=1e-6), name


def test_bootstrap_indices_stratified_and_deterministic() -> None:
    y = np.array([0] * 5 + [1] * 45)
    idx = bootstrap_indices(50, 200, seed=3, strata=y)
    assert idx.shape == (200, 50)
    assert np.array_equal(y[idx], np.broadcast_to(y, idx.shape))  # class of column j kept
    assert np.array_equal(idx, bootstrap_indices(50, 200, seed=3, strata=y))
    assert not np.array_equal(idx, bootstrap_indices(50, 200, seed=4, strata=y))
    plain = bootstrap_indices(50, 200, seed=3)
    assert plain.min() >= 0 and plain.max() < 50
    assert (y[plain].sum(axis=1) != 45).any()  # unstratified: class counts vary


def test_perfect_predictions_give_auroc_ci_of_one() -> None:
    y = np.random.default_rng(0).integers(0, 2, 100)
    p = np.where(y == 1, 0.9, 0.1)
    res = _ci("auroc", y, [p, p], "binary", n_boot=200)
    assert (res["mean"], res["low"], res["high"]) == (1.0, 1.0, 1.0)


def test_random_predictions_ci_contains_half_and_is_narrow() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    res = _ci("auroc", y, [rng.random(2000)], "binary", n_boot=500)
    assert res["low"] < 0.5 < res["high"]
    assert res["high"] - res["low"] < 0.1
    assert res["n_boot"] == 500


def test_ci_narrows_with_more_cases() -> None:
    widths = []
    for n in (100, 1600):
        y, p = _data("binary", n, 7)
        res = _ci("auroc", y, [p], "binary", n_boot=400)
        widths.append(res["high"] - res["low"])
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): a 4x narrower interval expected


@pytest.mark.parametrize("task", TASKS)
def test_pooled_ci_per_seed_and_mean(task: str) -> None:
    y, _ = _data(task, 150, 0)
    seeds = [_probs_for(task, y, s) for s in (1, 2, 3)]
    res = _ci("auroc", y, seeds, task, n_boot=300, seed=9)
    per = [metric_value("auroc", y, p, task) for p in seeds]
    assert res["per_seed"] == pytest.approx(per, abs=1e-12)
    assert len(res["per_seed"]) == 3
    assert res["mean"] == pytest.approx(np.mean(per), abs=1e-12)
    assert res["low"] <= res["high"]
    assert res == _ci("auroc", y, seeds, task, n_boot=300, seed=9)  # deterministic
    assert res != _ci("auroc", y, seeds, task, n_boot=300, seed=10)


def test_pooled_ci_averages_seeds_within_each_replicate() -> None:
    y, p1 = _data("binary", 200, 1)
    p2 = _probs_for("binary", y, 2)
    idx = bootstrap_indices(200, 300, seed=0, strata=y)
    reps = (
        metric_replicates("f1", y, p1, "binary", idx)
        + metric_replicates("f1", y, p2, "binary", idx)
    ) / 2
    res = _ci("f1", y, [p1, p2], "binary", n_boot=300, seed=0)
    assert res["low"] == pytest.approx(np.percentile(reps, 2.5))
    assert res["high"] == pytest.approx(np.percentile(reps, 97.5))


def test_paired_difference_with_itself_is_zero() -> None:
    y, p = _data("multiclass", 150, 3)
    res = _diff(
        "auprc", y, [p, p * 0.5 + 0.5 / 3], [p, p * 0.5 + 0.5 / 3], "multiclass", n_boot=300
    )
    assert (res["difference"], res["low"], res["high"]) == (0.0, 0.0, 0.0)
    assert res["p_value"] == 1.0


def test_paired_difference_detects_a_clearly_better_model() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    good = [np.clip(0.4 * y + 0.6 * rng.random(400), 0, 1) for _ in range(3)]
    noise = [rng.random(400) for _ in range(3)]
    res = _diff("auroc", y, good, noise, "binary", n_boot=1000, seed=0)
    assert res["low"] > 0
    assert res["p_value"] < 0.01
    assert res["p_value"] >= 1 / 1000  # floored: never an exact 0
    back = _diff("auroc", y, noise, good, "binary", n_boot=1000, seed=0)
    assert back["difference"] == pytest.approx(-res["difference"])
    assert back["high"] < 0
    assert res == _diff("auroc", y, good, noise, "binary", n_boot=1000, seed=0)


def test_paired_difference_of_close_models_is_not_significant() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    base = 0.3 * y + 0.7 * rng.random(300)
    a = [np.clip(base + 0.02 * rng.standard_normal(300), 0, 1)]
    b = [np.clip(base + 0.02 * rng.standard_normal(300), 0, 1)]
    res = _diff("auroc", y, a, b, "binary", n_boot=500)
    assert res["low"] < res["difference"] < res["high"]
    assert res["low"] < 0 < res["high"]
    assert res["p_value"] > 0.05


def test_strata_keep_classes_but_not_label_sets() -> None:
    y, _ = _data("multiclass", 60, 0)
    assert np.array_equal(strata(y, "multiclass"), y)
    yb, _ = _data("binary", 60, 0)
    assert np.array_equal(strata(yb[:, None], "binary"), yb)  # (N, 1) targets taken as (N,)
    assert strata(_data("multilabel", 60, 0)[0], "multilabel") is None


def test_scorer_checks_inputs_once_and_bootstrap_checks_its_own() -> None:
    y, p = _data("binary", 40, 0)
    with pytest.raises(ValueError, match="unknown metric"):
        scorer("mcc", y, p, "binary")
    with pytest.raises(ValueError, match="cases"):
        scorer("auroc", y, p[:10], "binary")
    s = scorer("auroc", y, p, "binary")
    with pytest.raises(ValueError, match="at least one seed"):
        pooled_ci([], 40)
    with pytest.raises(ValueError, match="at least one seed for b"):
        paired_difference([s], [], 40)
    with pytest.raises(ValueError, match="alpha"):
        pooled_ci([s], 40, alpha=1.5)


def _delong_slow(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """O(n^2) DeLong from the Mann-Whitney kernel psi(x, y) = 1[x > y] + 1/2 1[x == y]."""
    v10, v01, aucs = [], [], []
    for s in (a, b):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = len(v10[0]), len(v01[0])
    cov = np.cov(np.array(v10)) / m + np.cov(np.array(v01)) / n
    zstat = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return aucs[0], aucs[1], zstat


def test_delong_matches_slow_structural_components() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 120)
    a = np.round(0.5 * y + rng.random(120), 1)  # rounded: ties within and across classes
    b = np.round(0.2 * y + rng.random(120), 1)
    res = delong_test(y, a, b)
    auc_a, auc_b, z = _delong_slow(y, a, b)
    assert res["auroc_a"] == pytest.approx(auc_a, abs=1e-12)
    assert res["auroc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert res["auroc_a"] == pytest.approx(metric_value("auroc", y, a, "binary"), abs=1e-9)
    assert res["difference"] == pytest.approx(auc_a - auc_b, abs=1e-12)
    assert res["z"] == pytest.approx(z, rel=1e-9)
    assert res["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)


def test_delong_small_hand_example() -> None:
    # Positives 0.9, 0.8, 0.4 vs negatives 0.7, 0.3, 0.2 (a): V10 = (1, 1, 2/3), V01 = (2/3, 1, 1),
    # AUROC 8/9. Model b: V10 = (2/3, 2/3, 0), V01 = (0, 2/3, 2/3), AUROC 4/9. Covariances
    # (ddof 1): var_a = 1/27, var_b = 4/27, cov = 2/27 for both V10 and V01, so
    # Var(a - b) = 2 * (1/27 + 4/27 - 4/27) / 3 = 2/81 and z = (4/9) / sqrt(2/81) = 2 sqrt(2).
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2])
    b = np.array([0.6, 0.5, 0.1, 0.7, 0.3, 0.2])
    res = delong_test(y, a, b)
    assert res["auroc_a"] == pytest.approx(8 / 9)
    assert res["auroc_b"] == pytest.approx(4 / 9)
    assert res["z"] == pytest.approx(2 * math.sqrt(2))
    assert res["p_value"] == pytest.approx(2 * sps.norm.sf(2 * math.sqrt(2)))
    assert res["z"] == pytest.approx(_delong_slow(y, a, b)[2])


def test_delong_identical_and_clearly_different_scores() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    s = 0.3 * y + rng.random(300)
    same = delong_test(y, s, s.copy())
    assert same["z"] == 0.0 and same["p_value"] == 1.0 and same["difference"] == 0.0
    res = delong_test(y, 2 * y + rng.random(300), rng.random(300))
    assert res["difference"] > 0.3
    assert res["z"] > 3 and res["p_value"] < 1e-3


def test_delong_rejects_non_binary_targets() -> None:
    y = np.array([0, 1, 2, 1, 0, 2])
    s = np.linspace(0, 1, 6)
    with pytest.raises(ValueError, match="binary"):
        delong_test(y, s, s)
    with pytest.raises(ValueError, match="binary"):
        delong_test(np.eye(3)[y], s, s)
