"""Class weights of the classification losses: none, as configured, or balanced from the training split."""

from __future__ import annotations

from fusiondx.config import Config
from fusiondx.data.store import Prepared
from fusiondx.errors import ConfigError
from fusiondx.tasks import task_type


def class_weights(cfg: Config, prepared: Prepared) -> dict[str, list[float] | None]:
    """Per task: None, the configured list, or 'balanced' weights from the training split."""
    out: dict[str, list[float] | None] = {}
    train = prepared.store.split == "train"
    for tc, info in zip(cfg.tasks, prepared.tasks, strict=True):
        w = tc.class_weights
        tt = task_type(info)
        if not tt.is_classification:
            if w is not None:
                raise ConfigError(
                    f"tasks[{tc.name}].class_weights is set, but task '{tc.name}' is not a "
                    "classification task.",
                    fix="remove class_weights from that task",
                )
            out[info.name] = None
            continue
        if w is None or isinstance(w, list):
            out[info.name] = list(w) if w else None
            continue
        out[info.name] = tt.balanced_weights(info, prepared.store.targets[info.name][train])
    return out
