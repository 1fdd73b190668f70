"""Entropy sampling: the Shannon entropy of the predicted distribution, divided by its maximum."""

from __future__ import annotations

import numpy as np

from fusiondx.evaluation.acquisition._common import per_label
from fusiondx.registry import register_acquisition


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) over the last axis, 0 log 0 taken as 0."""
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(-1)


@register_acquisition(
    "entropy", reference="Shannon (1948); Settles, Active Learning Literature Survey (2009)"
)
def entropy(p: np.ndarray, *, multilabel: bool = False) -> np.ndarray:
    """Entropy of the predicted classes over log K (1: uniform); multilabel: mean binary entropy."""
    if multilabel:
        return (_entropy(per_label(p)) / np.log(2)).mean(-1)
    return _entropy(p) / np.log(p.shape[1])
