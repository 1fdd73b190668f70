"""Every checkpoint FusionDx reads goes through here: ``model.pt`` and Lightning's ``*.ckpt``.

A run folder can hold a file that is not what FusionDx wrote: a copy cut short, a disk error,
a file from somewhere else, or a pickle built to run code when loaded. ``torch.load`` with
``weights_only=True`` refuses to run such code, but its error is a long traceback that ends by
suggesting to load the file unsafely. Here every failure becomes one :class:`RunError` naming
the file, and the weights are checked against the model the run's config describes before
they are loaded into it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusiondx.errors import RunError

REPAIR = (
    "retrain with `fusiondx fit --overwrite` (without --resume), or restore the run folder "
    "from a copy"
)
# What Lightning needs to continue a training from a checkpoint.
LIGHTNING_KEYS = ("state_dict", "epoch", "global_step", "optimizer_states", "loops")


def _not_loadable(path: Path, why: str) -> RunError:
    return RunError(
        f"'{path.name}' is not a loadable FusionDx checkpoint ({why}): it is damaged, "
        "truncated, or was not written by FusionDx, and it is not loaded.",
        file=path,
        fix=REPAIR,
    )


def load_checkpoint(path: Path, *, lightning: bool = False) -> dict[str, Any]:
    """The contents of a checkpoint, loaded without running any code it may hold.

    ``lightning=False``: a plain ``state_dict`` (``model.pt``); ``True``: a Lightning checkpoint
    (``checkpoints/*.ckpt``) that training can resume from.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"The checkpoint '{path.name}' is missing.", file=path, fix=REPAIR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols say nothing useful
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike: the file is bad)
        # torch's own message is left out on purpose: it ends by suggesting an unsafe load.
        raise _not_loadable(path, f"reading it failed with {type(exc).__name__}") from None
    state = obj.get("state_dict") if lightning and isinstance(obj, dict) else obj
    if not _is_state_dict(state):
        raise _not_loadable(path, "it holds no tensors by name")
    if lightning:
        missing = [k for k in LIGHTNING_KEYS if k not in obj]
        if missing:
            raise _not_loadable(path, f"it lacks {', '.join(missing)}")
    return obj


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def check_weights(module: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Raise a :class:`RunError` unless ``state`` has exactly ``module``'s tensors and shapes."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for label, items in (
        ("missing", missing),
        ("not in the model", unexpected),
        ("of another shape", shapes),
    ):
        if items:
            parts.append(f"{len(items)} {label} (e.g. {'; '.join(items[:2])})")
    raise RunError(
        f"The weights in '{path.name}' do not fit the model the run's config.yaml describes: "
        f"tensors {', '.join(parts)}. The run folder mixes files of different runs, or the "
        "file was replaced.",
        file=path,
        fix=REPAIR,
    )


def load_weights(module: nn.Module, path: Path) -> None:
    """Load ``model.pt`` into ``module`` after checking it (see :func:`load_checkpoint`)."""
    state = load_checkpoint(path)
    check_weights(module, state, path)
    module.load_state_dict(state)
