"""What the strategies share: a multilabel task's labels as K two-class distributions."""

from __future__ import annotations

import numpy as np


def per_label(p: np.ndarray) -> np.ndarray:
    """(N, K) independent label probabilities -> (N, K, 2): each label as [absent, present]."""
    return np.stack([1.0 - p, p], axis=-1)
