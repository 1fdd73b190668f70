"""Harrell's C: scikit-survival's value, and a vectorised bootstrap that equals a slow double loop
and scikit-survival on every replicate's resampled cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sksurv.metrics import concordance_index_censored

from fusiondx.evaluation import survival as sv
from fusiondx.evaluation.weights import weights_from_indices


def _slow_c(risk, time, event, w=None) -> float:
    w = np.ones(len(risk)) if w is None else w
    num = den = 0.0
    for i in range(len(risk)):
        for j in range(len(risk)):
            if i == j or not event[i]:
                continue
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                den += w[i] * w[j]
                tied = abs(risk[i] - risk[j]) <= sv.TIED_TOL
                num += w[i] * w[j] * (0.5 if tied else 1.0 if risk[i] > risk[j] else 0.0)
    return num / den if den else float("nan")


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time = rng.integers(1, 12, n).astype(float)  # many tied times
    event = rng.integers(0, 2, n)
    risk = np.round(rng.normal(size=n) - 0.1 * time, 1)  # some tied risks...
    risk[:4] += 1e-10  # ...and some within scikit-survival's tie tolerance
    return risk, time, event


def test_concordance_known_answers() -> None:
    time = np.array([1.0, 2, 3, 4, 5, 6])
    event = np.array([1, 1, 0, 1, 1, 0])
    assert sv.concordance_index(-time, time, event) == pytest.approx(1.0)
    assert sv.concordance_index(time, time, event) == pytest.approx(0.0)
    assert sv.concordance_index(np.zeros(6), time, event) == pytest.approx(0.5)
    assert math.isnan(sv.concordance_index(np.arange(6.0), time, np.zeros(6)))
    assert math.isnan(sv.concordance_index(np.ones(1), np.ones(1), np.ones(1)))
    # tied times: event-vs-censored is comparable (event first), event-vs-event is not
    t2, e2 = np.array([2.0, 2.0, 2.0]), np.array([1, 0, 1])
    assert sv.concordance_index(np.array([3.0, 1.0, 0.0]), t2, e2) == pytest.approx(0.5)
    assert math.isnan(
        sv.concordance_index(np.array([1.0, 2.0]), np.array([2.0, 2.0]), np.array([1, 1]))
    )
    assert sv.survival_metrics(-time, time, event)["c_index"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concordance_is_scikit_survivals(seed: int) -> None:
    rng = np.random.default_rng(seed)
    risk, time, event = _data(rng, 60)
    ref = concordance_index_censored(event.astype(bool), time, risk)[0]
    assert sv.concordance_index(risk, time, event) == ref
    ones = np.ones((1, 60))  # the vectorised path on all cases
    assert sv.concordance_index(risk, time, event, ones)[0] == pytest.approx(ref, rel=1e-12)
    # non-finite cases are left out
    risk2 = np.append(risk, np.nan)
    assert sv.concordance_index(risk2, np.append(time, 3.0), np.append(event, 1)) == ref


def test_bootstrap_equals_double_loop_and_scikit_survival(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    n = 40
    risk, time, event = _data(rng, n)
    assert sv.concordance_index(risk, time, event) == pytest.approx(_slow_c(risk, time, event))
    idx = rng.integers(0, n, (6, n))
    w = weights_from_indices(idx, n)
    monkeypatch.setattr(sv, "BLOCK_ELEMENTS", 97)  # force many row blocks
    got = sv.concordance_index(risk, time, event, w)
    for b in range(idx.shape[0]):
        assert got[b] == pytest.approx(_slow_c(risk, time, event, w[b]), rel=1e-12)
        i = idx[b]
        assert got[b] == pytest.approx(
            concordance_index_censored(event[i].astype(bool), time[i], risk[i])[0], rel=1e-12
        )
