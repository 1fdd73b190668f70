"""Calibration, thresholds and conformal sets: the pure maths on constructed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from crepes import ConformalClassifier

from fusiondx.evaluation import calibration as cal
from fusiondx.evaluation import conformal as conf
from fusiondx.evaluation.thresholds import choose_threshold, choose_thresholds, predict_classes


def _binary(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a calibrated binary model: y ~ Bernoulli(sigmoid(z))."""
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return z, y


def _multiclass(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(0, 1.5, (n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z, y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_scaling_at_least_halves_the_ece_of_an_overconfident_model(kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "binary":
        (zv, yv), (zt, yt) = _binary(2000, rng), _binary(2000, rng)
    elif kind == "multiclass":
        (zv, yv), (zt, yt) = _multiclass(2000, 4, rng), _multiclass(2000, 4, rng)
    else:
        pairs = [_binary(2000, rng) for _ in range(6)]
        zv, yv = np.stack([p[0] for p in pairs[:3]], 1), np.stack([p[1] for p in pairs[:3]], 1)
        zt, yt = np.stack([p[0] for p in pairs[3:]], 1), np.stack([p[1] for p in pairs[3:]], 1)
    params = cal.fit_scaling(zv * 5, yv, kind)  # over-confident: logits five times too large
    before = cal.to_probs(zt * 5, kind)
    after = cal.to_probs(cal.apply_scaling(zt * 5, params, kind), kind)
    for ece in (cal.ece_fixed, cal.ece_adaptive):
        assert ece(after, yt, kind) <= ece(before, yt, kind) / 2
    assert cal.brier(after, yt, kind) < cal.brier(before, yt, kind)
    assert params["nll_after"] < params["nll_before"]
    if kind != "multiclass":
        assert np.allclose(params["temperature"], 5, rtol=0.15)
    # Deterministic: the same data give the same parameters.
    assert cal.fit_scaling(zv * 5, yv, kind) == params


def test_temperature_keeps_the_ranking() -> None:
    rng = np.random.default_rng(1)
    z, y = _binary(500, rng)
    params = cal.fit_scaling(z * 3, y, "binary")
    from sklearn.metrics import roc_auc_score

    p = cal.to_probs(cal.apply_scaling(z * 3, params, "binary"), "binary")
    assert roc_auc_score(y, p) == pytest.approx(roc_auc_score(y, z))


def test_adaptive_ece_and_reliability_on_known_bins() -> None:
    # Two equal-mass bins: confidences 0.2 (observed 0.0) and 0.8 (observed 1.0) -> gap 0.2.
    p = np.array([0.2, 0.2, 0.8, 0.8])
    y = np.array([0, 0, 1, 1])
    assert cal.ece_adaptive(p, y, "binary", n_bins=2) == pytest.approx(0.2)
    assert cal.ece_fixed(p, y, "binary", n_bins=10) == pytest.approx(0.2)
    r = cal.reliability(p, y, "binary")
    assert r["count"] == [2, 2] and r["observed"] == [0.0, 1.0]


def test_thresholds_on_constructed_scores() -> None:
    # Negatives 0.1, 0.2, 0.3, 0.45; positives 0.35, 0.4, 0.8, 0.9. Youden's J is best (0.75)
    # between 0.3 and 0.35: every positive called, one negative wrong.
    p = np.array([0.1, 0.2, 0.3, 0.45, 0.35, 0.4, 0.8, 0.9])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    t = choose_threshold(p, y, "youden")
    assert t["value"] == pytest.approx(0.325) and t["rule"] == "youden"
    assert t["sensitivity"] == 1 and t["specificity"] == 0.75
    # F1 of the positive class: 8/9 there, against 2/3 above 0.45.
    assert choose_threshold(p, y, "f1")["value"] == pytest.approx(0.325)
    # The highest threshold with sensitivity >= 0.75 calls 0.9, 0.8, (0.45) and 0.4.
    s = choose_threshold(p, y, {"sensitivity": 0.75})
    assert s["value"] == pytest.approx(0.375) and s["sensitivity"] == 0.75
    assert s["target"] == 0.75
    assert choose_threshold(p, y, {"sensitivity": 0.5})["value"] == pytest.approx(0.625)
    assert choose_threshold(p, y, 0.5)["value"] == 0.5
    # Ties go to the higher threshold: J is 1 for any cut between the classes.
    assert choose_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], "youden")["value"] == 0.5
    # One class in validation: no rule applies, 0.5 is kept and said.
    assert choose_threshold([0.1, 0.9], [1, 1], "youden")["rule"].startswith("fixed")


def test_thresholds_per_label_and_argmax() -> None:
    p = np.array([[0.1, 0.7], [0.3, 0.8], [0.6, 0.95], [0.7, 0.9]])
    y = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])
    t = choose_thresholds(p, y, "multilabel", "youden")
    assert [x["value"] for x in t] == pytest.approx([0.45, 0.85])
    assert predict_classes(p, "multilabel", [x["value"] for x in t]).tolist() == y.tolist()
    assert choose_thresholds(np.eye(3), [0, 1, 2], "multiclass", "youden") is None


def test_quantile_is_the_finite_sample_one() -> None:
    s = np.arange(1, 20) / 20  # n = 19: ceil(20 * 0.9) = 18th smallest
    assert conf.quantile(s, 0.9) == pytest.approx(18 / 20)
    assert conf.quantile(s[:5], 0.9) == math.inf  # ceil(6 * 0.9) = 6 > 5: every class


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("mondrian", [False, True])
@pytest.mark.parametrize("n", [59, 200])
def test_sets_match_crepes(score: str, mondrian: bool, n: int) -> None:
    """Our set holds a class exactly when crepes' unsmoothed p-value exceeds 1 - coverage."""
    rng = np.random.default_rng(n)
    zc, yc = _multiclass(n, 3, rng)
    zt, _ = _multiclass(300, 3, rng)
    pc, pt = cal.to_probs(zc, "multiclass"), cal.to_probs(zt, "multiclass")
    ours = conf.predict_sets(pt, conf.fit_conformal(pc, yc, 0.9, score, mondrian))
    alphas_cal = conf.scores(pc, score)[np.arange(n), yc]
    alphas = conf.scores(pt, score)
    cc = ConformalClassifier()
    if mondrian:
        cc.fit(alphas_cal, bins=yc)
        p_values = np.stack(
            [
                cc.predict_p(alphas, bins=np.full(len(pt), k), smoothing=False)[:, k]
                for k in range(3)
            ],
            axis=1,
        )
    else:
        cc.fit(alphas_cal)
        p_values = cc.predict_p(alphas, smoothing=False)
    assert np.array_equal(ours, (p_values > 0.1 + 1e-12).astype(int))


@pytest.mark.parametrize("mondrian", [False, True])
def test_coverage_holds_on_synthetic_data(mondrian: bool) -> None:
    """Over 200 draws of 100 calibration and 200 test cases, the mean coverage is within a
    binomial tolerance of at least 90%, and no more than slightly above (set sizes are small)."""
    rng = np.random.default_rng(7)
    covered, total = 0, 0
    per_class = np.zeros(3)
    counts = np.zeros(3)
    for _ in range(200):
        zc, yc = _multiclass(100, 3, rng)
        zt, yt = _multiclass(200, 3, rng)
        fitted = conf.fit_conformal(cal.to_probs(zc, "multiclass"), yc, 0.9, "lac", mondrian)
        sets = conf.predict_sets(cal.to_probs(zt, "multiclass"), fitted)
        hit = sets[np.arange(len(yt)), yt]
        covered += hit.sum()
        total += len(yt)
        per_class += np.bincount(yt, hit, 3)
        counts += np.bincount(yt, minlength=3)
    rate = covered / total
    tol = 3 * math.sqrt(0.9 * 0.1 / total) + 0.005  # draws are not independent per draw
    assert 0.9 - tol <= rate <= 0.9 + 0.03
    if mondrian:
        assert (per_class / counts >= 0.9 - 0.02).all()


def test_set_report_and_selective_curve() -> None:
    sets = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    r = conf.set_report(sets, [0, 1, 0, 1], ["a", "b"])
    assert r["coverage"] == 0.5 and r["mean_set_size"] == 1.0 and r["referred"] == 0.5
    assert r["per_class"]["a"] == {"n": 2, "coverage": 0.5, "mean_set_size": 1.0}
    curve = conf.selective_curve([1, 0, 1, 1], [0.9, 0.5, 0.8, 0.7], kept=[1.0, 0.75, 0.5])
    assert curve["accuracy"] == [0.75, 1.0, 1.0] and curve["kept"] == [1.0, 0.75, 0.5]
