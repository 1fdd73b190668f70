"""What a study trains: entries (baselines, strategies, ablations) x replicates (seeds or folds)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusiondx.config import Config
from fusiondx.errors import ConfigError, did_you_mean
from fusiondx.registry import ENCODERS, FUSIONS, list_fusions

# A single-modality baseline is that modality's encoder and head, joined by the plainest fusion
# (with one modality, concat is a projection), so it differs from fusion entries only in inputs.
BASELINE_FUSION = "concat"


@dataclass(frozen=True)
class Entry:
    """One row of the study table: a model trained once per replicate."""

    id: str
    label: str
    kind: str  # single | fusion | ablation | tuned
    fusion: str
    modalities: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Fusion options, plus ``dim``, ``train`` and ``encoder_dropout`` overrides (tuned entries)."""


@dataclass(frozen=True)
class Replicate:
    name: str  # seed0 ... or fold0 ...
    seed: int
    fold: int | None = None
    n_folds: int | None = None


def resolve_strategies(cfg: Config, strategies: str | list[str] | None) -> list[str]:
    """The study's fusion strategies: the config's list, a command-line override, or all."""
    chosen = cfg.study.strategies if strategies is None else strategies
    if isinstance(chosen, str):
        chosen = (
            list_fusions()
            if chosen.strip() == "all"
            else [s.strip() for s in chosen.split(",") if s.strip()]
        )
    known = list_fusions()
    if chosen == known:
        chosen = [s for s in known if fits(cfg, s)]
    for name in chosen:
        if name not in known:
            raise ConfigError(
                f"Unknown fusion strategy '{name}' in the study.{did_you_mean(name, known)}",
                fix="see `fusiondx list fusions`, or use --strategies all",
            )
    if not chosen:
        raise ConfigError(
            "The study has no fusion strategy to compare.",
            fix="give --strategies all or a comma-separated list such as concat,attention",
        )
    return list(dict.fromkeys(chosen))


def anchors(cfg: Config) -> set[str]:
    """Modalities every model must keep: the images that boxes and masks are drawn on."""
    from fusiondx.tasks import config_type

    images = (config_type(t).image_modality(t, cfg) for t in cfg.tasks)
    return {m for m in images if m is not None}


def fits(cfg: Config, strategy: str) -> bool:
    """Whether a strategy can serve the config's tasks (late fusion cannot draw boxes)."""
    from fusiondx.models.build import check_parts

    try:
        check_parts(
            cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"name": strategy})})
        )
    except ConfigError:
        return False
    return True


def main_entries(cfg: Config, strategies: list[str]) -> list[Entry]:
    """Single-modality baselines and one entry per strategy.

    Where a task localises or segments on an image, that image is the only single-modality
    baseline (no other modality can draw a box on it). Where a task writes reports, a decoder
    that sees no input at all (a language model of the reports) is one more baseline: what
    any input adds is measured against it.
    """
    from fusiondx.tasks import config_type

    mods = tuple(sorted(m.name for m in cfg.modalities))
    needed = anchors(cfg)
    entries = [
        Entry(f"single_{m}", f"{m} only ({_kind(cfg, m)})", "single", BASELINE_FUSION, (m,))
        for m in mods
        if not needed or m in needed
    ]
    text_tasks = [t.name for t in cfg.tasks if config_type(t).baseline_without_input]
    if text_tasks:
        entries.append(
            Entry(
                "single_nocontext",
                "no context (decoder alone)",
                "single",
                BASELINE_FUSION,
                (mods[0],),
                {"head_options": {t: {"context": "none"} for t in text_tasks}},
            )
        )
    for s in strategies:
        opts = dict(cfg.fusion.options) if s == cfg.fusion.name else {}
        entries.append(Entry(f"fusion_{s}", s, "fusion", s, mods, opts))
    return entries


def ablation_entries(cfg: Config, winner: Entry) -> list[Entry]:
    """The winner retrained without each modality in turn (nothing to ablate with one modality)."""
    if len(winner.modalities) < 2:
        return []
    out = []
    for m in sorted(set(winner.modalities) - anchors(cfg)):
        rest = tuple(x for x in winner.modalities if x != m)
        out.append(
            Entry(
                f"ablation_{winner.fusion}_minus_{m}",
                f"{winner.label} without {m}",
                "ablation",
                winner.fusion,
                rest,
                dict(winner.options),
            )
        )
    return out


def replicates(cfg: Config, seeds: int | None = None, folds: int | None = None) -> list[Replicate]:
    folds = cfg.study.folds if folds is None and seeds is None else folds
    if folds and cfg.data.split.column:
        raise ConfigError(
            f"Cross-validation folds were asked for, but data.split.column "
            f"('{cfg.data.split.column}') fixes every case's split, so each fold would "
            "train and test on the same cases.",
            fix="repeat over seeds instead (--seeds), or remove data.split.column",
        )
    if folds:
        return [Replicate(f"fold{f}", cfg.seed, f, folds) for f in range(folds)]
    n = seeds if seeds is not None else cfg.study.seeds
    return [Replicate(f"seed{s}", cfg.seed + s) for s in range(n)]


def run_config(
    cfg: Config, entry: Entry, rep: Replicate, study_dir: Path, threads: int | None
) -> dict[str, Any]:
    """The config of one training: the base config restricted to the entry, in the study folder.

    The split seed stays the base seed for every replicate, so every seed scores the same test
    cases; with folds, the fold picks the test cases.
    """
    # Only what the config sets: a training can then tell defaults from choices (small data).
    d = cfg.model_dump(mode="json", exclude_unset=True)
    d["name"] = rep.name
    d["seed"] = rep.seed
    d["output_dir"] = str(study_dir / "runs" / entry.id)
    d["modalities"] = [m for m in d["modalities"] if m["name"] in entry.modalities]
    options = dict(entry.options)
    train = options.pop("train", {})
    for t in d["tasks"]:
        t["options"] = {
            **t.get("options", {}),
            **options.get("head_options", {}).get(t["name"], {}),
        }
    options.pop("head_options", None)
    dim_set = "dim" in options or "dim" in cfg.fusion.model_fields_set
    dim = options.pop("dim", cfg.fusion.dim)
    enc_dropout = options.pop("encoder_dropout", None)
    if enc_dropout is not None:
        for m in d["modalities"]:
            cls = ENCODERS.get(cfg.modality(m["name"]).encoder_name).cls
            if "dropout" in inspect.signature(cls.__init__).parameters:
                m.setdefault("encoder", {}).setdefault("options", {})["dropout"] = enc_dropout
    d["fusion"] = {"name": entry.fusion, "options": options} | ({"dim": dim} if dim_set else {})
    d.setdefault("train", {}).update(train)
    d["train"]["progress"] = False
    if threads:
        d["train"]["threads"] = threads
    split = d["data"].setdefault("split", {})
    split["seed"] = cfg.seed if split.get("seed") is None else split["seed"]
    if rep.fold is not None:
        split["folds"], split["fold"] = rep.n_folds, rep.fold
    # Decoded arrays are shared by every training of the study through the disk cache.
    d["data"]["cache"] = "disk"
    if d["data"].get("cache_dir") is None:
        d["data"]["cache_dir"] = str(study_dir / ".cache")
    d.pop("study", None)
    return d


def _kind(cfg: Config, modality: str) -> str:
    m = cfg.modality(modality)
    enc = m.encoder_name
    return f"{m.kind}, {enc}" if enc else m.kind


def fusion_level(name: str) -> str:
    return FUSIONS.get(name).cls.level
