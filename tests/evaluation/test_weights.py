"""Case weights: bootstrap indices to counts, and weighted means that skip undefined cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusiondx.evaluation.weights import case_weights, weighted_mean, weights_from_indices


def test_weights_from_indices_counts_each_row() -> None:
    idx = np.array([[0, 0, 2], [1, 2, 2], [3, 3, 3]])
    w = weights_from_indices(idx, 4)
    assert w.dtype == np.float64
    assert w.tolist() == [[2, 0, 1, 0], [0, 1, 2, 0], [0, 0, 0, 3]]
    with pytest.raises(ValueError):
        weights_from_indices(idx, 3)


def test_weighted_mean_skips_undefined_cases() -> None:
    v = np.array([1.0, np.nan, 3.0, 5.0])
    assert weighted_mean(v) == pytest.approx(3.0)
    w = np.array([[1, 5, 1, 0], [0, 1, 0, 0], [2, 0, 0, 1.0]])
    out = weighted_mean(v, w)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1]) and out[2] == pytest.approx(7 / 3)
    assert math.isnan(weighted_mean(np.array([np.nan, np.nan])))
    with pytest.raises(ValueError):
        weighted_mean(v, np.ones(4))
    with pytest.raises(ValueError):
        case_weights(np.ones((2, 3)), 4)


def test_every_type_bootstraps_like_resampling_and_names_match() -> None:
    from fusiondx.evaluation.directions import LOWER_IS_BETTER
    from fusiondx.evaluation.regions import box_metrics, mask_metrics, mask_scores
    from fusiondx.evaluation.regression import regression_metrics
    from fusiondx.evaluation.survival import survival_metrics
    from fusiondx.registry import TASK_TYPES

    rng = np.random.default_rng(9)
    n = 16
    lo = rng.random((n, 2)) * 0.5
    boxes = np.concatenate([lo, lo + 0.2 + rng.random((n, 2)) * 0.3], axis=1)
    pboxes = np.clip(boxes + rng.normal(0, 0.1, boxes.shape), 0, 1)
    boxes[2] = np.nan
    tmask = (rng.random((n, 1, 8, 8)) < 0.3).astype(np.uint8)
    pmask = rng.random((n, 1, 8, 8)) < 0.3
    tmask[3] = 255
    tmask[4] = 0
    scores = mask_scores(pmask, tmask)
    risk, time, event = (
        rng.normal(size=n),
        rng.integers(1, 6, n).astype(float),
        rng.integers(0, 2, n),
    )
    yp, yt = rng.normal(size=n), rng.normal(size=n)
    idx = rng.integers(0, n, (5, n))
    w = weights_from_indices(idx, n)
    calls = {
        "box": lambda ii, ww: box_metrics(pboxes[ii], boxes[ii], ww),
        "mask": lambda ii, ww: mask_metrics({k: v[ii] for k, v in scores.items()}, ww),
        "survival": lambda ii, ww: survival_metrics(risk[ii], time[ii], event[ii], ww),
        "regression": lambda ii, ww: regression_metrics(yp[ii], yt[ii], ww),
    }
    everything = np.arange(n)
    for kind, f in calls.items():
        boot = f(everything, w)
        assert set(boot) == set(TASK_TYPES.get(kind).cls.metrics)
        single = f(everything, None)
        assert all(isinstance(v, float) for v in single.values())
        for b in range(w.shape[0]):
            again = f(idx[b], None)
            for k in boot:
                assert boot[k].shape == (w.shape[0],)
                assert np.isclose(boot[k][b], again[k], rtol=1e-9, atol=1e-12, equal_nan=True), (
                    kind,
                    k,
                    b,
                )
    assert {m for e in TASK_TYPES.entries() for m in e.cls.metrics} >= LOWER_IS_BETTER
