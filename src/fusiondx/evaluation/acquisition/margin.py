"""Margin sampling: how close the two most probable classes are."""

from __future__ import annotations

import numpy as np

from fusiondx.registry import register_acquisition


@register_acquisition(
    "margin", reference="Scheffer, Decomain & Wrobel (2001); Settles, Active Learning (2009)"
)
def margin(p: np.ndarray, *, multilabel: bool = False) -> np.ndarray:
    """1 minus the gap between the two most probable classes; multilabel: mean of 1 - |2p - 1|."""
    if multilabel:
        return (1.0 - np.abs(2.0 * p - 1.0)).mean(-1)
    top2 = np.sort(p, axis=-1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])
