"""Class weights of the classification losses: none, as configured, or balanced from the training split."""

from __future__ import annotations

import numpy as np

from fusiondx.config import Config
from fusiondx.data.store import Prepared
from fusiondx.errors import ConfigError


def class_weights(cfg: Config, prepared: Prepared) -> dict[str, list[float] | None]:
    """Per task: None, the configured list, or 'balanced' weights from the training split."""
    out: dict[str, list[float] | None] = {}
    train = prepared.store.split == "train"
    for tc, info in zip(cfg.tasks, prepared.tasks, strict=True):
        w = tc.class_weights
        if not info.is_classification:
            if w is not None:
                raise ConfigError(f"tasks[{tc.name}].class_weights is set, but task '{tc.name}' is not a "
                                  "classification task.", fix="remove class_weights from that task")
            out[info.name] = None
            continue
        if w is None or isinstance(w, list):
            out[info.name] = list(w) if w else None
            continue
        y = prepared.store.targets[info.name][train]
        if info.type == "multilabel":
            pos = y.sum(0)
            out[info.name] = [float((len(y) - p) / max(p, 1)) for p in pos]
        else:
            k = len(info.classes)
            counts = np.bincount(y.astype(int), minlength=k)
            out[info.name] = [float(len(y) / (k * max(c, 1))) for c in counts]
    return out
