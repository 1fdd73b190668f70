"""The layer order of docs/extending.md, enforced: no module imports from a higher layer.

Every import in src/fusiondx is read with ``ast`` (function-level imports included, since a lazy
import is still a dependency), so a new module cannot reach upward unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fusiondx

SRC = Path(fusiondx.__file__).parent

# Lowest first. A module may import its own unit and any unit of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"types", "errors", "config", "registry", "configurable", "pretrained", "_attention", "_nn"},
    {"evaluation"},
    {"tasks"},
    {"data"},
    {"encoders", "fusion", "heads", "objectives"},
    {"models"},
    {"engine", "references", "datasets"},
    {
        "export",
        "quantize",
        "quantize_measure",
        "quantize_recipes",
        "study",
        "explanations",
        "serving",
        "federated",
    },
    {"demo", "catalog", "cli", "__init__", "__main__"},
]
LEVEL = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = (
                [node.module]
                if node.module != "fusiondx"
                else [f"fusiondx.{a.name}" for a in node.names]
            )
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n == "fusiondx" or n.startswith("fusiondx.")]
    return out


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_unit_has_a_layer() -> None:
    units = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in _modules()}
    assert units - set(LEVEL) == set(), (
        "add the new package or module to LAYERS (and to docs/extending.md)"
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_upward(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    upward = [
        f"line {line}: {name} (layer {LEVEL.get(_unit(name))} > {LEVEL[own]})"
        for line, name in _imports(path)
        if _unit(name) != own and LEVEL.get(_unit(name), 99) > LEVEL[own]
    ]
    assert not upward, (
        f"{path.relative_to(SRC)} ({own}, layer {LEVEL[own]}) imports upward: {upward}"
    )


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from fusiondx.engine.run import fit\n")
    assert _imports(bad) == [(2, "fusiondx.engine.run")]
    assert LEVEL[_unit("fusiondx.engine.run")] > LEVEL["data"]
