"""Which models the service splits into encoders + fusion/heads, and that the split equals the
whole model under every presence mask for each fusion that splits (PyTorch, no ONNX export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import fusiondx
from fusiondx.data.store import prepare
from fusiondx.models.build import build_model
from fusiondx.serving.split import split_difference, splittable


@pytest.fixture(scope="module")
def prepared(cohort_dir: Path) -> Any:
    from tests.conftest import QUICK

    raw = {**QUICK, "data": {**QUICK["data"], "manifest": str(cohort_dir / "manifest.csv")}}
    cfg = fusiondx.load_config(raw)
    return cfg, prepare(cfg)


def _model(prepared: Any, fusion: str) -> Any:
    cfg, p = prepared
    cfg = cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"name": fusion})})
    torch.manual_seed(0)
    return build_model(cfg, p.specs, p.tasks).eval()


@pytest.mark.parametrize(
    "fusion", ["concat", "early_concat", "gated", "attention", "tensor", "late_average", "moe"]
)
def test_split_equals_whole_model_under_every_mask(prepared: Any, fusion: str) -> None:
    _, p = prepared
    model = _model(prepared, fusion)
    assert splittable(model) is None
    example = p.store.batch(list(range(6)))["inputs"]
    tasks = [t.name for t in p.tasks]
    posthoc = {
        "tasks": {tasks[0]: {"calibration": {"method": "temperature", "temperature": [1.7]}}}
    }
    assert split_difference(model, tasks, example, posthoc=posthoc) < 1e-5


@pytest.mark.parametrize("fusion", ["multimodal_transformer", "multilevel"])
def test_token_and_level_fusions_are_served_whole(prepared: Any, fusion: str) -> None:
    why = splittable(_model(prepared, fusion))
    assert why is not None and ("tokens" in why or "levels" in why)
