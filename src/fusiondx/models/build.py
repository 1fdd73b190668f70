"""Build a MultimodalModel (FeatureFusion or LateFusion) from a config and the fitted modality specs."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from torch import nn

from fusiondx.config import Config, TaskConfig
from fusiondx.errors import ConfigError
from fusiondx.heads import Head
from fusiondx.models.late import LateFusion
from fusiondx.models.multimodal import FeatureFusion, MultimodalModel
from fusiondx.registry import (
    ENCODERS,
    FUSIONS,
    HEADS,
    check_options,
    create_encoder,
    create_fusion,
    create_head,
)
from fusiondx.tasks import TaskInfo, config_type, task_type
from fusiondx.types import ModalitySpec

if TYPE_CHECKING:
    from fusiondx.encoders import Encoder


def check_parts(cfg: Config) -> None:
    """Fail fast, before any file is decoded, on unknown part names, options or kinds."""
    fusion = FUSIONS.get(cfg.fusion.name)
    check_options(
        fusion.cls,
        {"in_dims": {}, "out_dim": 1, **cfg.fusion.options},
        what=f"fusion '{cfg.fusion.name}'",
    )
    for m in cfg.modalities:
        if fusion.cls.level == "early":
            continue
        entry = ENCODERS.get(m.encoder_name)
        _check_kind(m.encoder_name, entry.meta.get("kind"), m.name, m.kind)
        check_options(entry.cls, m.encoder.options, what=f"encoder '{m.encoder_name}'")
    for t in cfg.tasks:
        head = HEADS.get(t.head).cls
        config_type(t)  # the head serves the task's declared type
        check_options(head, t.options, what=f"head '{t.head}'")
        _check_head_fits(cfg, t, head, fusion.cls.level)


def _check_head_fits(cfg: Config, task: TaskConfig, head: type[Head], level: str) -> None:
    """Heads that need more than one fused vector, against the fusion level and encoders."""
    if level == "late" and not head.supports_late:
        raise ConfigError(
            f"Fusion '{cfg.fusion.name}' is late (it combines each modality's predicted probabilities), "
            f"and head '{task.head}' of task '{task.name}' has no probabilities to combine.",
            fix="pick an early or intermediate fusion (e.g. concat, attention) for this task",
        )
    if "maps" not in head.needs:
        return
    image = config_type(task).image_modality(task, cfg)
    assert image is not None, (
        f"the type of task '{task.name}' names no image for head '{task.head}'"
    )
    if level == "early":
        raise ConfigError(
            f"Head '{task.head}' reads the feature maps of an image encoder, and early fusion "
            f"'{cfg.fusion.name}' has none (it feeds the raw inputs to one network).",
            fix="pick an intermediate fusion (e.g. concat, film, attention) for this task",
        )
    enc = cfg.modality(image).encoder_name
    if "maps" not in ENCODERS.get(enc).tags:
        ok = [e.name for e in ENCODERS.entries() if "maps" in e.tags]
        raise ConfigError(
            f"Head '{task.head}' needs feature maps of image modality '{image}', and its "
            f"encoder '{enc}' does not provide them.",
            fix=f"set modalities[{image}].encoder.name to one of: {', '.join(ok)}",
        )


def _check_kind(enc_name: str, enc_kind: str | None, modality: str, kind: str) -> None:
    if enc_kind != kind:
        raise ConfigError(
            f"Encoder '{enc_name}' is for {enc_kind} data but modality '{modality}' is {kind}.",
            fix=f"pick a {kind} encoder: {', '.join(e.name for e in ENCODERS.entries() if e.meta.get('kind') == kind)}",
        )


def build_encoders(cfg: Config, specs: Mapping[str, ModalitySpec], level: str) -> nn.ModuleDict:
    """One encoder per modality, in sorted order: the configured one with its options, or for
    early fusion the modality kind's low-level projection; ``out_dim`` defaults to ``fusion.dim``."""
    built: dict[str, nn.Module] = {}
    for name in sorted(specs):
        spec = specs[name]
        enc_name = f"lowlevel_{spec.kind}" if level == "early" else cfg.modality(name).encoder_name
        entry = ENCODERS.get(enc_name)
        _check_kind(enc_name, entry.meta.get("kind"), name, spec.kind)
        options = {} if level == "early" else dict(cfg.modality(name).encoder.options)
        options.setdefault("out_dim", cfg.fusion.dim)
        built[name] = create_encoder(enc_name, **spec.encoder_kwargs(entry.cls), **options)
    return nn.ModuleDict(built)


def build_model(
    cfg: Config,
    specs: Mapping[str, ModalitySpec],
    tasks: Sequence[TaskInfo],
    class_weights: Mapping[str, list[float] | None] | None = None,
) -> MultimodalModel:
    """Encoders per modality, the configured fusion, and one head per task."""
    level = FUSIONS.get(cfg.fusion.name).cls.level
    dim = cfg.fusion.dim
    encoders = build_encoders(cfg, specs, level)
    # Typed view of the encoders (nn.ModuleDict types its items as plain Modules).
    built = {m: cast("Encoder", e) for m, e in encoders.items()}
    weights = class_weights or {}
    heads = nn.ModuleDict()
    task_cfgs = {t.name: t for t in cfg.tasks}
    for t in tasks:
        tc = task_cfgs[t.name]
        head_cls = HEADS.get(tc.head).cls
        accepted = inspect.signature(head_cls.__init__).parameters
        known = _head_inputs(cfg, t, head_cls, specs, built) | {
            "class_weights": weights.get(t.name)
        }

        def head(in_dim: int, tc=tc, known=known, accepted=accepted) -> nn.Module:  # noqa: ANN001
            given = {k: v for k, v in (known | {"in_dim": in_dim}).items() if k in accepted}
            return create_head(tc.head, **given, **tc.options)

        if level == "late":
            heads[t.name] = nn.ModuleDict({m: head(built[m].out_dim) for m in sorted(specs)})
        else:
            heads[t.name] = head(dim)
    if level == "late":
        # Late fusions that need to know how probabilities combine (softmax or independent
        # sigmoids) take the task type.
        takes_task = (
            "task" in inspect.signature(FUSIONS.get(cfg.fusion.name).cls.__init__).parameters
        )
        combiners = nn.ModuleDict(
            {
                t.name: create_fusion(
                    cfg.fusion.name,
                    in_dims={m: t.num_outputs for m in specs},
                    out_dim=t.num_outputs,
                    **({"task": t.type} if takes_task else {}),
                    **cfg.fusion.options,
                )
                for t in tasks
            }
        )
        return LateFusion(encoders, combiners, heads)
    options = dict(cfg.fusion.options)
    if FUSIONS.get(cfg.fusion.name).cls.uses_levels:
        options["level_dims"] = {m: built[m].level_dims() for m in specs}
    fusion = create_fusion(
        cfg.fusion.name, in_dims={m: built[m].out_dim for m in specs}, out_dim=dim, **options
    )
    return FeatureFusion(encoders, fusion, heads, level)


def _head_inputs(
    cfg: Config,
    t: TaskInfo,
    head_cls: type[Head],
    specs: Mapping[str, ModalitySpec],
    encoders: Mapping[str, Encoder],
) -> dict[str, Any]:
    """What the data fixed for a task's head; each head takes the names its constructor has."""
    known = task_type(t).head_inputs(t)
    if t.image is not None:
        spec = specs[t.image]
        known |= {
            "image": t.image,
            "map_channels": encoders[t.image].map_channels(),
            "spatial_dims": spec.spatial_dims,
            "image_size": tuple(spec.image_size),
        }
    if "tokens" in head_cls.needs:
        widths = {m: e.out_dim for m, e in encoders.items()}
        if any(w != cfg.fusion.dim for w in widths.values()):
            raise ConfigError(
                f"Report generation attends over every modality's tokens, which must all be "
                f"fusion.dim = {cfg.fusion.dim} wide; encoder widths are {widths}.",
                fix="drop out_dim from the encoder options so every encoder uses fusion.dim",
            )
    return known
