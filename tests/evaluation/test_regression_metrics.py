"""Regression metrics: scikit-learn's MAE, RMSE and R^2, with weights equal to repeated cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from fusiondx.evaluation.regression import regression_metrics
from fusiondx.evaluation.weights import weights_from_indices


def test_regression_matches_scikit_learn_with_weights() -> None:
    rng = np.random.default_rng(8)
    true = rng.normal(50, 3, 30)
    pred = true + rng.normal(0, 1.5, 30)
    true[[4, 9]] = np.nan
    ok = ~np.isnan(true)
    idx = rng.integers(0, 30, (6, 30))
    w = weights_from_indices(idx, 30)
    got = regression_metrics(pred, true, w)
    for b in range(idx.shape[0]):
        sw = w[b][ok]
        assert got["mae"][b] == pytest.approx(
            mean_absolute_error(true[ok], pred[ok], sample_weight=sw)
        )
        assert got["rmse"][b] == pytest.approx(
            math.sqrt(mean_squared_error(true[ok], pred[ok], sample_weight=sw))
        )
        assert got["r2"][b] == pytest.approx(r2_score(true[ok], pred[ok], sample_weight=sw))
    one = regression_metrics(pred, true)
    assert one["r2"] == pytest.approx(r2_score(true[ok], pred[ok]))
    assert regression_metrics(true, true)["rmse"] == 0.0
    assert math.isnan(regression_metrics(np.arange(4.0), np.full(4, 7.0))["r2"])
