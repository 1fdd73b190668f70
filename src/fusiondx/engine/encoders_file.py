"""``encoders.pt``: what ``pretrain`` leaves for ``fit``, ``study`` and ``retrieve`` to start from.

One file per pretraining run, read without running code (``torch.load(weights_only=True)``): the
tensors of every modality's encoder and of the objectives (the shared-space projections that
``retrieve`` searches), and as JSON text the encoder names and options, the fitted modality
specs, the preprocessing state (a text vocabulary or a scaler must be the one the weights were
trained with) and the ids of the cases pretraining trained on (so that ``fit`` can refuse a
test set the encoders have seen).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusiondx.engine.runfolder import write_whole
from fusiondx.errors import RunError

FORMAT = "fusiondx-encoders/1"


@dataclass
class PretrainedEncoders:
    """The contents of an ``encoders.pt``.

    Attributes:
        modalities: modality -> {"encoder", "options", "spec", "preprocessor"}.
        objectives: [{"name", "options"}] as configured (their constructor options included).
        trained_on: ids of the cases whose inputs pretraining learned from.
        state: "encoders.<modality>.<param>" and "objectives.<name>.<param>" -> tensor.
    """

    modalities: dict[str, dict[str, Any]]
    objectives: list[dict[str, Any]]
    trained_on: list[str]
    state: dict[str, torch.Tensor]

    def encoder_state(self, modality: str) -> dict[str, torch.Tensor]:
        prefix = f"encoders.{modality}."
        return {k[len(prefix) :]: v for k, v in self.state.items() if k.startswith(prefix)}

    def objective_state(self, name: str) -> dict[str, torch.Tensor]:
        prefix = f"objectives.{name}."
        return {k[len(prefix) :]: v for k, v in self.state.items() if k.startswith(prefix)}


def save_encoders(path: Path, enc: PretrainedEncoders) -> None:
    meta = {
        "format": FORMAT,
        "modalities": enc.modalities,
        "objectives": enc.objectives,
        "trained_on": enc.trained_on,
    }
    obj = {"meta": json.dumps(meta), "state": {k: v.detach().cpu() for k, v in enc.state.items()}}
    write_whole(path, lambda tmp: torch.save(obj, tmp))


def _bad(path: Path, why: str) -> RunError:
    return RunError(
        f"'{path}' is not an encoders file written by `fusiondx pretrain` ({why}); it is not loaded.",
        file=path,
        fix="point encoder.init at the encoders.pt of a finished `fusiondx pretrain` run",
    )


def load_encoders(path: Path) -> PretrainedEncoders:
    """Read an ``encoders.pt`` without running any code it may hold; one clear error if it is bad."""
    path = Path(path)
    if not path.is_file():
        raise RunError(
            f"The pretrained encoders file '{path}' does not exist.",
            file=path,
            fix="run `fusiondx pretrain CONFIG` first, or correct encoder.init",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike: the file is bad)
        raise _bad(path, f"reading it failed with {type(exc).__name__}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("meta"), str):
        raise _bad(path, "it has no FusionDx header")
    try:
        meta = json.loads(obj["meta"])
    except json.JSONDecodeError:
        raise _bad(path, "its header is not JSON") from None
    state = obj.get("state")
    if meta.get("format") != FORMAT or not isinstance(state, dict):
        raise _bad(path, f"its format is {meta.get('format')!r}, not {FORMAT!r}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise _bad(path, "its weights are not tensors by name")
    return PretrainedEncoders(meta["modalities"], meta["objectives"], meta["trained_on"], state)
