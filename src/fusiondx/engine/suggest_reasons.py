"""The words of `fusiondx suggest`: why each case was picked, and its predicted columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

UNSURE_GAP = 0.4
"""Below this gap between the two most probable classes (0.3 < p < 0.7 with two classes, or a
label within 0.2 of 0.5) a reason says the model is unsure; above it, which way it leans."""


@dataclass(frozen=True)
class TaskProbs:
    """One classification task's probabilities over the pool.

    ``probs`` (N, K): single-label tasks a distribution over ``classes`` (binary tasks both
    classes); multilabel tasks one independent probability per label.
    """

    task: str
    classes: tuple[str, ...]
    probs: np.ndarray
    multilabel: bool
    # The run's validation-chosen decision threshold (binary: of the positive class; multilabel:
    # one per label); None: 0.5 / the most probable class.
    thresholds: tuple[float, ...] | None = None

    def columns(self, rows: np.ndarray) -> dict[str, Any]:
        """``<task>_pred`` (at the run's threshold, as ``predict`` calls it) and ``<task>_prob``
        (the predicted class's probability); multilabel: the labels at or above their threshold
        (``;``-joined, ``none``) and ``<task>_prob_<label>`` per label."""
        p = self.probs[rows]
        t = self.task
        thr = np.asarray(self.thresholds if self.thresholds else [0.5] * p.shape[1])
        if self.multilabel:
            cols: dict[str, Any] = {
                f"{t}_pred": [
                    ";".join(c for c, on in zip(self.classes, r >= thr, strict=True) if on)
                    or "none"
                    for r in p
                ]
            }
            for k, c in enumerate(self.classes):
                cols[f"{t}_prob_{c}"] = p[:, k].round(4)
            return cols
        if len(self.classes) == 2 and self.thresholds:
            k = (p[:, 1] >= thr[0]).astype(int)
        else:
            k = p.argmax(1)
        return {
            f"{t}_pred": [self.classes[int(j)] for j in k],
            f"{t}_prob": p[np.arange(len(p)), k].round(4),
        }

    def reason(self, i: int) -> str:
        """Why case ``i`` is uncertain (or not), in words with its probabilities."""
        p = self.probs[i]
        if self.multilabel:
            j = int(np.argmin(np.abs(p - 0.5)))
            c = self.classes[j]
            unsure = int((np.abs(p - 0.5) < UNSURE_GAP / 2).sum())
            if not unsure:
                return f"every label is fairly sure (the least: p({c})={p[j]:.2f})"
            more = f" ({unsure} labels between 0.3 and 0.7)" if unsure > 1 else ""
            return f"p({c})={p[j]:.2f}: the model is unsure whether {c} is present{more}"
        if len(p) == 2:  # the positive class's probability, as predictions.csv gives it
            neg, pos = self.classes
            said = f"p({pos})={p[1]:.2f}"
            if abs(p[1] - p[0]) < UNSURE_GAP:
                return f"{said}: the model is unsure between {neg} and {pos}"
            return f"{said}: the model leans to {pos if p[1] > p[0] else neg}"
        a, b = (int(k) for k in np.argsort(-p, kind="stable")[:2])
        ca, cb = self.classes[a], self.classes[b]
        said = f"p({ca})={p[a]:.2f}, p({cb})={p[b]:.2f}"
        if p[a] - p[b] < UNSURE_GAP:
            return f"{said}: the model is unsure between {ca} and {cb}"
        return f"{said}: the model leans to {ca}"


def uncertainty_reason(probs: list[TaskProbs], i: int) -> str:
    """Every task's reason for case ``i``, prefixed by the task's name when there are several."""
    if len(probs) == 1:
        return probs[0].reason(i)
    return "; ".join(f"{p.task}: {p.reason(i)}" for p in probs)


def diversity_reason(step: int, distance: float, position: int, candidates: int) -> str:
    """Why k-center greedy took a case: ``position`` is its place among the ``candidates`` most
    uncertain (0 = most uncertain), ``distance`` how far it was from the cases picked before."""
    if step == 0:
        return f"picked first: the most uncertain of the {candidates} candidates"
    return (
        f"chosen for diversity: farthest from the cases already picked (distance "
        f"{distance:.2f}); #{position + 1} of the {candidates} most uncertain"
    )
