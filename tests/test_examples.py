"""Example configs stay valid (their part names and options included) and in step with the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import fusiondx
from fusiondx.config import Config
from fusiondx.demo import DEMO_CONFIG
from fusiondx.errors import ConfigError
from fusiondx.models.build import check_parts
from fusiondx.registry import FUSIONS, REFERENCES

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def check_names(cfg: Config) -> None:
    """Every part a config names exists in its registry: encoders, fusion, heads (with their
    options and kinds), and the study's strategies and references."""
    check_parts(cfg)
    for listed, registry in ((cfg.study.strategies, FUSIONS), (cfg.study.references, REFERENCES)):
        if listed != "all":
            for name in listed:
                registry.get(name)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_is_valid(path: Path) -> None:
    check_names(fusiondx.load_config(path))


@pytest.mark.parametrize(
    "where,value",
    [
        (("fusion", "name"), "no_such_fusion"),
        (("study", "strategies"), ["concat", "no_such_fusion"]),
        (("tasks", 0, "head"), "no_such_head"),
    ],
)
def test_a_config_naming_a_missing_part_is_caught(
    tmp_path: Path, where: tuple, value: object
) -> None:
    raw = yaml.safe_load((EXAMPLES[0].parent / "demo.yaml").read_text())
    node = raw
    for key in where[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[where[-1]] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="no_such"):
        check_names(fusiondx.load_config(path))


def test_demo_example_matches_the_demo() -> None:
    cfg = fusiondx.load_config(Path(__file__).resolve().parents[1] / "examples" / "demo.yaml")
    demo = fusiondx.load_config(DEMO_CONFIG)
    assert cfg.modalities == demo.modalities
    assert cfg.fusion == demo.fusion and cfg.tasks == demo.tasks
    assert cfg.fairness == demo.fairness
