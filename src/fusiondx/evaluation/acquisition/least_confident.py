"""Least-confident sampling: how far the most probable class is from certainty."""

from __future__ import annotations

import numpy as np

from fusiondx.registry import register_acquisition


@register_acquisition(
    "least_confident", reference="Lewis & Gale (1994); Settles, Active Learning (2009)"
)
def least_confident(p: np.ndarray, *, multilabel: bool = False) -> np.ndarray:
    """1 - max p, over its largest value 1 - 1/K; multilabel: the mean over labels."""
    if multilabel:
        return (2.0 * (1.0 - np.maximum(p, 1.0 - p))).mean(-1)
    k = p.shape[1]
    return (1.0 - p.max(-1)) * k / (k - 1)
