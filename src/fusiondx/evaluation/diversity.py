"""Diverse batches for active learning: k-center greedy on embeddings.

Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
ICLR 2018: choosing the batch that minimises the largest distance from any case to its nearest
chosen (or labelled) case is the k-center problem; the greedy 2-approximation repeatedly takes
the case farthest from every centre so far. Run on the most uncertain candidates only (as
Zhdanov, "Diverse mini-batch Active Learning", 2019, pre-filters by uncertainty), it gives a
batch that is both uncertain and spread out, instead of many near-copies of one unsure case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Picks:
    """The k-center greedy picks, in the order taken.

    ``distance[i]`` is how far ``order[i]`` was from its nearest centre when it was taken
    (``inf`` for a first pick made with no centre yet).
    """

    order: np.ndarray  # (n,) int, indices into the embeddings
    distance: np.ndarray  # (n,) float


def k_center_greedy(
    embeddings: np.ndarray,
    n: int,
    *,
    first: int | None = None,
    centres: np.ndarray | None = None,
) -> Picks:
    """Pick ``n`` rows of ``embeddings`` (N, D), each the farthest (Euclidean) from those before.

    Args:
        embeddings: one row per candidate.
        n: how many to pick (at most N).
        first: a row to take first whatever its distance (e.g. the most uncertain case); without
            it the first pick is the farthest from ``centres``, or row 0 when there are none.
        centres: (C, D) points already covered (e.g. cases labelled before), never picked.

    Ties go to the lowest index, so the picks are deterministic.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {x.shape}")
    n = min(int(n), len(x))
    nearest = np.full(len(x), np.inf)
    if centres is not None and len(centres):
        c = np.asarray(centres, dtype=np.float64)
        for row in c:  # row by row: memory O(N), not O(N * C)
            nearest = np.minimum(nearest, np.linalg.norm(x - row, axis=1))
    order: list[int] = []
    dist: list[float] = []
    taken = np.zeros(len(x), dtype=bool)
    for step in range(n):
        if step == 0 and first is not None:
            i = int(first)
        else:
            i = int(np.argmax(np.where(taken, -np.inf, nearest)))
        order.append(i)
        dist.append(float(nearest[i]))
        taken[i] = True
        nearest = np.minimum(nearest, np.linalg.norm(x - x[i], axis=1))
    return Picks(np.asarray(order, dtype=np.int64), np.asarray(dist, dtype=np.float64))
