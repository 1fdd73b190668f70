"""Every acquisition strategy (active learning), run over the registry, and k-center greedy."""

from __future__ import annotations

import numpy as np
import pytest

from fusiondx.errors import ConfigError
from fusiondx.evaluation.acquisition import scores
from fusiondx.evaluation.diversity import k_center_greedy
from fusiondx.registry import ACQUISITIONS

STRATEGIES = ACQUISITIONS.names()


def test_the_three_strategies_are_registered() -> None:
    assert {"entropy", "least_confident", "margin"} <= set(STRATEGIES)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_most_uncertain_case_ranks_first(strategy: str) -> None:
    p = np.array([0.92, 0.15, 0.49, 0.70, 0.03, 0.38])  # p(positive); 0.49 is the closest to 0.5
    s = scores(strategy, np.stack([1 - p, p], 1))
    assert np.argsort(-s, kind="stable").tolist() == [2, 5, 3, 1, 0, 4]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_a_uniform_guess_scores_one_and_a_certain_one_zero(strategy: str, k: int) -> None:
    certain = np.eye(k)[[0]]
    uniform = np.full((1, k), 1 / k)
    assert scores(strategy, uniform)[0] == pytest.approx(1.0)
    assert scores(strategy, certain)[0] == pytest.approx(0.0)
    half, sure = np.full((1, k), 0.5), np.array([[1.0] + [0.0] * (k - 1)])
    assert scores(strategy, half, multilabel=True)[0] == pytest.approx(1.0)
    assert scores(strategy, sure, multilabel=True)[0] == pytest.approx(0.0)


def test_the_strategies_differ_with_three_classes() -> None:
    # A: two classes tied, the third impossible; B: spread over three with a clear leader.
    p = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert np.argmax(scores("margin", p)) == 0  # no gap between the top two
    assert np.argmax(scores("entropy", p)) == 1  # more spread
    assert np.argmax(scores("least_confident", p)) == 1  # lower top probability
    assert scores("entropy", p)[0] == pytest.approx(np.log(2) / np.log(3))


def test_multilabel_entropy_is_the_mean_binary_entropy() -> None:
    p = np.array([[0.5, 1.0, 0.0], [0.2, 0.5, 0.5]])
    h = lambda q: -(q * np.log2(q) + (1 - q) * np.log2(1 - q))  # noqa: E731
    assert scores("entropy", p, multilabel=True) == pytest.approx([1 / 3, (h(0.2) + 2) / 3])


def test_an_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="entropy, least_confident, margin"):
        scores("entropie", np.array([[0.5, 0.5]]))


def _clusters() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [40, 5, 5]  # one crowded cluster: the most uncertain cases would all come from it
    x = np.concatenate(
        [c + rng.normal(0, 0.3, (n, 2)) for c, n in zip(centres, sizes, strict=True)]
    )
    label = np.repeat(np.arange(3), sizes)
    return x, label


def test_k_center_greedy_picks_spread_points() -> None:
    x, label = _clusters()
    picks = k_center_greedy(x, 3, first=0)
    assert picks.order[0] == 0
    assert sorted(label[picks.order]) == [0, 1, 2]  # one per cluster, not three near-copies
    assert np.isinf(picks.distance[0]) and (picks.distance[1:] > 5).all()


def test_k_center_greedy_leaves_out_what_the_centres_cover() -> None:
    x, label = _clusters()
    covered = x[label == 0][:3]  # already labelled cases of the crowded cluster
    picks = k_center_greedy(x, 2, centres=covered)
    assert sorted(label[picks.order]) == [1, 2]
    again = k_center_greedy(x, 2, centres=covered)
    assert picks.order.tolist() == again.order.tolist()  # deterministic


def test_k_center_greedy_takes_at_most_every_point() -> None:
    x, _ = _clusters()
    picks = k_center_greedy(x[:4], 10)
    assert sorted(picks.order.tolist()) == [0, 1, 2, 3]
