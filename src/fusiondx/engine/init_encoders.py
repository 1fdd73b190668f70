"""Starting ``fit`` from pretrained encoders: ``modalities[i].encoder: {init: .../encoders.pt, freeze: ...}``.

Before the data is prepared, :func:`load_pretrained` reads every named ``encoders.pt`` and checks
it was made for the same encoder; the modality is then preprocessed with the pretraining's
fitted state (:func:`preprocessor_states`: a vocabulary or scaler fitted anew would feed the
weights other numbers). Once the model is built, :func:`apply_pretrained` loads the weights (after
checking the fitted specs agree) and freezes the encoders asked to be; :func:`check_unseen`
refuses a test set whose cases pretraining learned from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from fusiondx.config import Config
from fusiondx.data.store import CaseStore
from fusiondx.engine.checkpoints import check_weights
from fusiondx.engine.encoders_file import PretrainedEncoders, load_encoders
from fusiondx.errors import ConfigError, RunError
from fusiondx.registry import ENCODERS


def load_pretrained(cfg: Config) -> dict[str, tuple[Path, PretrainedEncoders]]:
    """Modality -> (file, contents) for every modality whose encoder names ``init``."""
    files: dict[Path, PretrainedEncoders] = {}
    out: dict[str, tuple[Path, PretrainedEncoders]] = {}
    for m in cfg.modalities:
        init = m.encoder.init
        if init is None:
            continue
        path = Path(init)
        if path not in files:
            files[path] = load_encoders(path)
        enc = files[path]
        saved = enc.modalities.get(m.name)
        if saved is None:
            raise ConfigError(
                f"modalities[{m.name}].encoder.init '{path}' holds no encoder for modality "
                f"'{m.name}' (it has: {', '.join(sorted(enc.modalities))}).",
                fix="name the modality as in the pretraining config, or drop encoder.init for it",
            )
        want = ENCODERS.get(m.encoder_name).name
        have = ENCODERS.get(saved["encoder"]).name
        if want != have or dict(m.encoder.options) != dict(saved["options"]):
            raise ConfigError(
                f"modalities[{m.name}]: the config asks for encoder '{want}' with options "
                f"{dict(m.encoder.options)}, and '{path}' was pretrained with '{have}' and "
                f"{saved['options']}.",
                fix="use the same encoder name and options as the pretraining config",
            )
        out[m.name] = (path, enc)
    return out


def preprocessor_states(loaded: Mapping[str, tuple[Path, PretrainedEncoders]]) -> dict[str, Any]:
    """Modality -> the preprocessing state its pretrained encoder was trained with."""
    return {m: enc.modalities[m]["preprocessor"] for m, (_, enc) in loaded.items()}


def apply_pretrained(
    cfg: Config,
    encoders: nn.ModuleDict,
    specs: Mapping[str, Any],
    loaded: Mapping[str, tuple[Path, PretrainedEncoders]],
) -> list[str]:
    """Load the pretrained weights into ``encoders``; freeze those asked; return the frozen ones."""
    frozen = []
    for m, (path, enc) in loaded.items():
        spec = specs[m].to_dict()
        if spec != enc.modalities[m]["spec"]:
            raise RunError(
                f"Modality '{m}' is shaped differently from when '{path}' was pretrained "
                f"(now {spec}, then {enc.modalities[m]['spec']}).",
                file=path,
                fix="keep the modality's preprocessing settings as in the pretraining config",
            )
        state = enc.encoder_state(m)
        check_weights(encoders[m], state, path)
        encoders[m].load_state_dict(state)
        if cfg.modality(m).encoder.freeze:
            encoders[m].requires_grad_(False)
            frozen.append(m)
    return frozen


def check_unseen(loaded: Mapping[str, tuple[Path, PretrainedEncoders]], store: CaseStore) -> None:
    """Refuse test cases whose inputs a pretrained encoder learned from."""
    test = set(store.ids[store.split == "test"].tolist())
    for m, (path, enc) in loaded.items():
        seen = sorted(test & set(enc.trained_on))
        if seen:
            raise RunError(
                f"{len(seen)} test case(s) of this run were in the pretraining set of '{path}' "
                f"(modality '{m}'), e.g. {', '.join(seen[:5])}: the test would not be held out.",
                file=path,
                fix="pretrain with the same data.split settings and seed as this run (pretrain then "
                "holds out the same test cases), or give the split in a column",
            )
