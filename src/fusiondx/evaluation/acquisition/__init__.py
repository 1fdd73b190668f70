"""Acquisition strategies of active learning: how unsure a model is of each case, one function
per strategy, registered with ``@register_acquisition(name)`` (``fusiondx list acquisitions``).

A strategy is a pure function ``(probs, *, multilabel) -> scores``:

- ``probs`` (N, K): one row per case. Single-label tasks (binary, multiclass) give a distribution
  over the K classes (rows sum to 1; a binary task passes both classes); multilabel tasks give K
  independent probabilities, one per label.
- ``scores`` (N,): in [0, 1], higher is more unsure. Every strategy is scaled to that range, so
  the scores of several tasks can be averaged and read the same way: 1 is a uniform guess, 0 a
  certain one. A multilabel task scores the mean of its labels' binary uncertainties.

The rankings follow Settles, "Active Learning Literature Survey" (2009), section 3.1. With two
classes the three strategies rank cases identically (each is a function of |p - 0.5|); they
differ for three or more classes.

:func:`fusiondx.evaluation.acquisition.scores` runs a strategy by name.
"""

from __future__ import annotations

import numpy as np

from fusiondx.registry import ACQUISITIONS, import_modules

import_modules(__name__, __path__)


def scores(strategy: str, probs: np.ndarray, *, multilabel: bool = False) -> np.ndarray:
    """The uncertainty (N,) in [0, 1] of each row of ``probs`` (N, K) under ``strategy``.

    An unknown strategy is a :class:`~fusiondx.errors.ConfigError` listing the known ones.
    """
    fn = ACQUISITIONS.get(strategy).cls
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if p.ndim != 2 or p.shape[1] < (1 if multilabel else 2):
        raise ValueError(f"probs must be (N, K) with K >= 2 classes (or >= 1 label), got {p.shape}")
    out = np.asarray(fn(p, multilabel=multilabel), dtype=np.float64)
    return np.clip(out, 0.0, 1.0)


__all__ = ["scores"]
