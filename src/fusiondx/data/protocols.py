"""What the study's protocols change in the training data, and nothing else.

- :func:`subsample_labels`: keep a share of the training cases (whole patients, stratified like
  the split, nested: a smaller share keeps a subset of a larger one's cases); the others are
  marked ``unused``, so validation and test stay exactly the cases they were.
- :func:`remove_modalities`: hide each modality of each training case with a fixed probability
  (drawn once per case, not per epoch as ``train.modality_dropout`` does), never every modality
  of a case; validation and test keep their inputs.
"""

from __future__ import annotations

import math

import numpy as np

UNUSED = "unused"


def subsample_labels(
    split: np.ndarray,
    strata: np.ndarray | None,
    groups: np.ndarray,
    fraction: float,
    seed: int,
) -> np.ndarray:
    """``split`` with all but ``fraction`` of the training patients' cases set to ``unused``.

    Patients are drawn within each stratum of their first training case, at least one per
    stratum; one permutation per seed, so smaller fractions are subsets of larger ones.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a label fraction is in (0, 1], got {fraction}")
    out = np.asarray(split).astype(object).copy()
    if fraction == 1:
        return out.astype(str)
    train = np.flatnonzero(out == "train")
    first: dict[str, int] = {}
    for i in train:
        first.setdefault(str(groups[i]), int(i))
    key = np.array(
        [str(strata[i]) if strata is not None else "" for i in first.values()], dtype=object
    )
    names = np.array(list(first), dtype=object)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    kept: set[str] = set()
    for stratum in sorted(set(key.tolist())):
        members = [names[j] for j in order if key[j] == stratum]
        kept.update(members[: max(1, math.ceil(fraction * len(members)))])
    drop = [i for i in train if str(groups[i]) not in kept]
    out[drop] = UNUSED
    return out.astype(str)


def remove_modalities(mask: np.ndarray, split: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``mask`` with each present modality of each training case hidden with probability ``share``.

    A case that would lose every modality keeps one of its present ones, chosen at random.
    """
    if not 0 <= share < 1:
        raise ValueError(f"a share of removed modalities is in [0, 1), got {share}")
    out = np.asarray(mask, dtype=bool).copy()
    if share == 0:
        return out
    rng = np.random.default_rng(seed)
    train = np.asarray(split) == "train"
    drop = (rng.random(out.shape) < share) & train[:, None]
    kept = out & ~drop
    emptied = ~kept.any(axis=1) & out.any(axis=1)
    rescue_scores = np.where(out, rng.random(out.shape), -1.0)
    rescue = rescue_scores.argmax(axis=1)
    kept[np.flatnonzero(emptied), rescue[emptied]] = True
    return kept
