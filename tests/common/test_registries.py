"""Conventions every registry keeps (meta-tests): found by walking the packages, so a module that
registers nothing, a part missing from its docs table or a tag that disagrees with its class
cannot hide."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fusiondx.encoders._base import Encoder
from fusiondx.registry import (
    ACQUISITIONS,
    ADAPTERS,
    ENCODERS,
    FUSIONS,
    HEADS,
    OBJECTIVES,
    READERS,
    REFERENCES,
    Registry,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"

# registry -> (package, public modules that are not parts, docs page that must name every part)
PACKAGES: dict[str, tuple[Registry[Any], str, tuple[str, ...], str]] = {
    "encoders": (ENCODERS, "fusiondx.encoders", (), "encoders.md"),
    "fusions": (FUSIONS, "fusiondx.fusion", (), "fusions.md"),
    "heads": (HEADS, "fusiondx.heads", (), "tasks.md"),
    "references": (REFERENCES, "fusiondx.references", (), "references.md"),
    "adapters": (ADAPTERS, "fusiondx.datasets", ("prepare", "synthetic"), "real-data.md"),
    # image/, signal/ and text/ are packages whose __init__ holds the kind's entry points
    "readers": (READERS, "fusiondx.data.readers", ("image", "signal", "text"), "readers.md"),
    "objectives": (OBJECTIVES, "fusiondx.objectives", (), "representation.md"),
    "acquisitions": (ACQUISITIONS, "fusiondx.evaluation.acquisition", (), "trust.md"),
}


def _overrides(method: str) -> Callable[[type], bool]:
    return lambda cls: getattr(cls, method) is not getattr(Encoder, method)


# What each tag means, written out once more: the registry computes tags in the base classes'
# part_tags(); these rules restate the meaning so a wrong computation fails here.
TAG_RULES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "encoders": {
        "tokens": _overrides("forward_tokens"),
        "levels": _overrides("forward_levels"),
        "maps": _overrides("forward_maps"),
        "3d": lambda c: 3 in c.image_dims,
        "lowlevel": lambda c: c.lowlevel,
        "pretrained": lambda c: c.pretrained,
        "optional": lambda c: bool(c.requires),
    },
    "fusions": {
        "handles_missing": lambda c: c.handles_missing,
        "tokens": lambda c: c.uses_tokens,
        "levels": lambda c: c.uses_levels,
        "fits_on_validation": lambda c: hasattr(c, "fit_meta"),
        "aux_loss": lambda c: c.has_aux_loss,
    },
    "heads": {
        "maps": lambda c: "maps" in c.needs,
        "tokens": lambda c: "tokens" in c.needs,
        "late": lambda c: c.supports_late,
        "decodes": lambda c: c.decodes,
        "missing_targets": lambda c: c.skips_missing_targets,
    },
    "references": {},
    "adapters": {},
    "readers": {},
    "objectives": {"shared_space": lambda c: c.projects},
    "acquisitions": {},
}


def _public_modules(package: str, skip: tuple[str, ...]) -> set[str]:
    pkg = importlib.import_module(package)
    names = set()
    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        rel = mod.name[len(package) + 1 :]
        if rel not in skip and not any(p.startswith("_") for p in rel.split(".")):
            names.add(mod.name)
    return names


@pytest.mark.parametrize("what", list(PACKAGES))
def test_every_public_module_registers_a_part(what: str) -> None:
    registry, package, skip, _ = PACKAGES[what]
    modules = _public_modules(package, skip)
    assert modules, f"no modules found under {package}"
    # A part may be a sub-package (heads/generation/: one head, a module per decoder kind), its
    # class in a private module there: the sub-package is the part, its modules belong to it.
    registering = {_public_part(e.cls.__module__) for e in registry.entries()}
    silent = {m for m in modules if not any(m == r or m.startswith(r + ".") for r in registering)}
    assert not silent, f"{what}: modules registering nothing: {sorted(silent)}"
    assert registering <= modules, (
        f"{what}: parts registered outside {package}: {sorted(registering - modules)}"
    )


def _public_part(module: str) -> str:
    parts = module.split(".")
    while parts[-1].startswith("_"):
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("what", list(PACKAGES))
def test_every_part_is_in_its_docs_table(what: str) -> None:
    registry, _, _, page = PACKAGES[what]
    text = (DOCS / page).read_text()
    missing = [
        n
        for n in registry.names()
        if f"`{n}`" not in text and not re.search(rf"\bprepare {n}\b", text)
    ]
    assert not missing, f"docs/{page} does not name {missing}"


@pytest.mark.parametrize("what", list(PACKAGES))
def test_tags_are_what_the_class_says(what: str) -> None:
    registry = PACKAGES[what][0]
    rules = TAG_RULES[what]
    for e in registry.entries():
        expected = {tag for tag, rule in rules.items() if rule(e.cls)}
        assert e.tags == expected, (
            f"{what} '{e.name}': tags {sorted(e.tags)}, class says {sorted(expected)}"
        )
        assert "tags" not in e.meta


@pytest.mark.parametrize("what", list(PACKAGES))
def test_aliases_resolve_to_their_entry_and_list_under_its_name(what: str) -> None:
    registry = PACKAGES[what][0]
    names = registry.names()
    for e in registry.entries():
        for alias in e.aliases:
            assert alias in registry and alias not in names
            assert registry.get(alias) is e


def test_registry_rejects_restated_tags_and_clashing_names() -> None:
    reg: Registry[Any] = Registry("widget")

    @reg.register("round_widget", aliases=("round",))
    class Round:
        """A widget."""

    with pytest.raises(TypeError, match="computed from the class"):
        reg.register("square", tags={"tokens"})
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("other", aliases=("round",))(type("Other", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("round")(type("Other", (), {}))
    assert reg.get("round").name == "round_widget" and reg.names() == ["round_widget"]
    from fusiondx.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'round"):
        reg.get("rund")


def test_encoder_names_follow_one_rule() -> None:
    for e in ENCODERS.entries():
        assert e.name.startswith(f"{e.cls.kind}_"), (
            f"encoder '{e.name}' is not <kind>_<architecture>"
        )
