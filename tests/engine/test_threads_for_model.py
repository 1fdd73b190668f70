"""A model whose training batch is tiny trains on one torch thread unless the config names the
threads (docs/scaling.md, "Sharing the machine"); fit records what it used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fusiondx.config import Config
from fusiondx.engine.trainer import ONE_THREAD_BELOW_FLOPS, threads_for_model


@pytest.fixture
def two_threads() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _cfg(quick_config: dict[str, Any], **train: Any) -> Config:
    quick_config["train"].update(train)
    return Config.model_validate(quick_config)


@pytest.mark.usefixtures("two_threads")
def test_one_thread_below_the_threshold_per_batch(quick_config: dict[str, Any]) -> None:
    cfg = _cfg(quick_config, batch_size=32)
    per_case_at_threshold = int(ONE_THREAD_BELOW_FLOPS // 32)
    assert threads_for_model(cfg, per_case_at_threshold + 1) == 2
    assert torch.get_num_threads() == 2
    assert threads_for_model(cfg, per_case_at_threshold - 1) == 1
    assert torch.get_num_threads() == 1


@pytest.mark.usefixtures("two_threads")
def test_threads_named_in_the_config_win(quick_config: dict[str, Any]) -> None:
    cfg = _cfg(quick_config, threads=2)
    assert threads_for_model(cfg, 1) == 2


@pytest.mark.usefixtures("two_threads")
def test_fit_records_the_threads_it_trained_on(
    quick_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusiondx.engine.run import fit

    monkeypatch.setenv("FUSIONDX_THREADS", "2")  # what setup_torch gives, before the model

    # The labs alone: a few thousand FLOPs per case, far below the threshold.
    quick_config["modalities"] = [m for m in quick_config["modalities"] if m["name"] == "labs"]
    cfg = _cfg(quick_config, threads=None, epochs=1)
    result = fit(cfg, progress=False)
    metrics = json.loads((Path(result.run_dir) / "metrics.json").read_text())
    assert metrics["threads"] == 1
    assert metrics["flops_per_case"] * cfg.train.batch_size < ONE_THREAD_BELOW_FLOPS
