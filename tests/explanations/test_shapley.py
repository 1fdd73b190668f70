"""Exact modality Shapley values: the formula, and on a real trained model."""

from __future__ import annotations

import itertools
from math import factorial
from typing import Any

import numpy as np
import pytest
import torch

from fusiondx.errors import RunError
from fusiondx.explanations._target import Target, class_probs
from fusiondx.explanations.shapley import MAX_MODALITIES, check_size, shapley, subsets


def _permutation_shapley(v: dict[frozenset[int], float], m: int) -> np.ndarray:
    """The textbook definition: each player's mean marginal contribution over all M! orders."""
    phi = np.zeros(m)
    for order in itertools.permutations(range(m)):
        have: set[int] = set()
        for j in order:
            phi[j] += v[frozenset(have | {j})] - v[frozenset(have)]
            have.add(j)
    return phi / factorial(m)


def test_matches_the_definition_on_a_game_with_interactions() -> None:
    rng = np.random.default_rng(0)
    m = 4
    table = {
        frozenset(s): float(rng.normal())
        for k in range(m + 1)
        for s in itertools.combinations(range(m), k)
    }
    present = torch.ones(3, m, dtype=torch.bool)

    def value(masks: torch.Tensor) -> torch.Tensor:  # (S, N, M) -> (S, N)
        return torch.tensor(
            [[table[frozenset(np.flatnonzero(row.numpy()).tolist())] for row in s] for s in masks]
        )

    phi, base, pred = shapley(value, present)
    expected = _permutation_shapley(table, m)
    np.testing.assert_allclose(phi, np.tile(expected, (3, 1)), atol=1e-12)
    assert base == pytest.approx([table[frozenset()]] * 3)
    assert pred == pytest.approx([table[frozenset(range(m))]] * 3)


def test_a_pure_interaction_is_split_equally() -> None:
    def value(masks: torch.Tensor) -> torch.Tensor:  # 1 only when modalities 0 AND 2 are in
        return (masks[..., 0] & masks[..., 2]).double()

    phi, _, _ = shapley(value, torch.ones(1, 3, dtype=torch.bool))
    np.testing.assert_allclose(phi[0], [0.5, 0.0, 0.5])


def test_subsets_are_every_bitmask() -> None:
    s = subsets(3)
    assert s.shape == (8, 3) and len({tuple(r.tolist()) for r in s}) == 8
    assert not s[0].any() and s[-1].all()


def test_too_many_modalities_are_refused_clearly() -> None:
    check_size(MAX_MODALITIES)
    with pytest.raises(RunError, match="at most 8 modalities"):
        check_size(MAX_MODALITIES + 1)


def _value_fn(model: Any, target: Target, inputs: Any):
    def value(masks: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            rows = [
                class_probs(
                    target.info,
                    model.task_head(target.info.name),
                    model.predict(inputs, m)[target.info.name],
                )[:, target.index]
                for m in masks
            ]
        return torch.stack(rows)

    return value


def test_on_a_trained_model_values_sum_to_prediction_minus_base_and_are_exact(
    loaded: tuple[Any, Any, Any], one_thread: Any
) -> None:
    cfg, model, prepared = loaded
    store = prepared.store
    info = prepared.tasks[0]
    target = Target(info, 1)
    idx = np.flatnonzero(store.mask.all(1))[:6]
    batch = store.batch(idx)
    value = _value_fn(model, target, batch["inputs"])
    phi, base, pred = shapley(value, batch["mask"])
    with torch.no_grad():
        full = class_probs(
            info,
            model.task_head(info.name),
            model.predict(batch["inputs"], batch["mask"])[info.name],
        )[:, 1]
        none = class_probs(
            info,
            model.task_head(info.name),
            model.predict(batch["inputs"], torch.zeros_like(batch["mask"]))[info.name],
        )[:, 1]
    np.testing.assert_allclose(pred, full.numpy(), atol=1e-6)
    np.testing.assert_allclose(base, none.numpy(), atol=1e-6)
    np.testing.assert_allclose(phi.sum(1), pred - base, atol=1e-6)
    assert np.abs(phi).max() > 1e-4  # the model uses its inputs: not a trivially zero answer
    # Brute force on the first case: every order of adding the 4 modalities.
    m = len(model.modalities)
    first = _value_fn(model, target, {k: _first(v) for k, v in batch["inputs"].items()})
    table = {}
    for k in range(m + 1):
        for s in itertools.combinations(range(m), k):
            mask = torch.zeros(1, 1, m, dtype=torch.bool)
            mask[0, 0, list(s)] = True
            table[frozenset(s)] = float(first(mask)[0, 0])
    np.testing.assert_allclose(phi[0], _permutation_shapley(table, m), atol=1e-6)


def _first(v: Any) -> Any:
    return {k: t[:1] for k, t in v.items()} if isinstance(v, dict) else v[:1]


def test_an_absent_modality_gets_zero(loaded: tuple[Any, Any, Any], one_thread: Any) -> None:
    cfg, model, prepared = loaded
    store = prepared.store
    idx = np.flatnonzero(store.mask.all(1))[:4]
    batch = store.batch(idx)
    mask = batch["mask"].clone()
    mask[:, 1] = False  # as if the second modality were missing for these cases
    target = Target(prepared.tasks[0], 1)
    phi, base, pred = shapley(_value_fn(model, target, batch["inputs"]), mask)
    assert np.all(phi[:, 1] == 0)
    assert np.abs(phi[:, [0, 2, 3]]).max() > 0
    np.testing.assert_allclose(phi.sum(1), pred - base, atol=1e-6)
