"""Build a MultimodalModel from a config and the fitted modality specs."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

from torch import nn

from fusiondx.config import Config
from fusiondx.data.targets import TaskInfo
from fusiondx.errors import ConfigError
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.registry import (
    ENCODERS,
    FUSIONS,
    HEADS,
    _load_all,
    check_options,
    create_encoder,
    create_fusion,
    create_head,
)
from fusiondx.types import ModalitySpec


def check_parts(cfg: Config) -> None:
    """Fail fast, before any file is decoded, on unknown part names, options or kinds."""
    _load_all()
    fusion = FUSIONS.get(cfg.fusion.name)
    check_options(fusion.cls, {"in_dims": {}, "out_dim": 1, **cfg.fusion.options},
                  what=f"fusion '{cfg.fusion.name}'")
    for m in cfg.modalities:
        if fusion.cls.level == "early":
            continue
        entry = ENCODERS.get(m.encoder_name)
        _check_kind(m.encoder_name, entry.meta.get("kind"), m.name, m.kind)
        check_options(entry.cls, m.encoder.options, what=f"encoder '{m.encoder_name}'")
    for t in cfg.tasks:
        check_options(HEADS.get(t.head).cls, t.options, what=f"head '{t.head}'")


def _check_kind(enc_name: str, enc_kind: str | None, modality: str, kind: str) -> None:
    if enc_kind != kind:
        raise ConfigError(
            f"Encoder '{enc_name}' is for {enc_kind} data but modality '{modality}' is {kind}.",
            fix=f"pick a {kind} encoder: {', '.join(e.name for e in ENCODERS.entries() if e.meta.get('kind') == kind)}")


def build_model(cfg: Config, specs: Mapping[str, ModalitySpec], tasks: Sequence[TaskInfo],
                class_weights: Mapping[str, list[float] | None] | None = None) -> MultimodalModel:
    """Encoders per modality, the configured fusion, and one head per task."""
    _load_all()
    level = FUSIONS.get(cfg.fusion.name).cls.level
    dim = cfg.fusion.dim
    encoders = nn.ModuleDict()
    for name in sorted(specs):
        spec = specs[name]
        enc_name = f"lowlevel_{spec.kind}" if level == "early" else cfg.modality(name).encoder_name
        entry = ENCODERS.get(enc_name)
        _check_kind(enc_name, entry.meta.get("kind"), name, spec.kind)
        options = {} if level == "early" else dict(cfg.modality(name).encoder.options)
        options.setdefault("out_dim", dim)
        encoders[name] = create_encoder(enc_name, **spec.encoder_kwargs(entry.cls), **options)
    weights = class_weights or {}
    heads = nn.ModuleDict()
    task_cfgs = {t.name: t for t in cfg.tasks}
    for t in tasks:
        tc = task_cfgs[t.name]
        HEADS.get(tc.head)

        def head(in_dim: int, t: TaskInfo = t, tc=tc) -> nn.Module:  # noqa: ANN001
            return create_head(tc.head, in_dim=in_dim, num_classes=len(t.classes), task=t.type,
                               class_weights=weights.get(t.name), **tc.options)

        if level == "late":
            heads[t.name] = nn.ModuleDict({m: head(encoders[m].out_dim) for m in sorted(specs)})
        else:
            heads[t.name] = head(dim)
    if level == "late":
        # Late fusions that need to know how probabilities combine (softmax or independent
        # sigmoids) take the task type.
        takes_task = "task" in inspect.signature(FUSIONS.get(cfg.fusion.name).cls.__init__).parameters
        fusion: nn.Module = nn.ModuleDict({
            t.name: create_fusion(cfg.fusion.name, in_dims={m: t.num_outputs for m in specs},
                                  out_dim=t.num_outputs,
                                  **({"task": t.type} if takes_task else {}), **cfg.fusion.options)
            for t in tasks})
    else:
        options = dict(cfg.fusion.options)
        if FUSIONS.get(cfg.fusion.name).cls.uses_levels:
            options["level_dims"] = {m: encoders[m].level_dims() for m in specs}
        fusion = create_fusion(cfg.fusion.name, in_dims={m: encoders[m].out_dim for m in specs},
                               out_dim=dim, **options)
    return MultimodalModel(encoders, fusion, heads, level)
