"""Example configs stay valid and in step with the demo."""

from __future__ import annotations

from pathlib import Path

import pytest

import fusiondx
from fusiondx.demo import DEMO_CONFIG

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_is_valid(path: Path) -> None:
    fusiondx.load_config(path)


def test_demo_example_matches_the_demo() -> None:
    cfg = fusiondx.load_config(Path(__file__).resolve().parents[1] / "examples" / "demo.yaml")
    demo = fusiondx.load_config(DEMO_CONFIG)
    assert cfg.modalities == demo.modalities
    assert cfg.fusion == demo.fusion and cfg.tasks == demo.tasks
