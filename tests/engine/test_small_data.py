"""Small cohorts get small-data settings, but only where the config left a default, and say so."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import fusiondx
from fusiondx.config import load_config
from fusiondx.engine import small_data

BASE: dict[str, Any] = {
    "name": "s",
    "data": {"manifest": "m.csv"},
    "modalities": [
        {"name": "report", "kind": "text", "column": "r"},
        {"name": "labs", "kind": "tabular", "columns": ["a"]},
    ],
    "tasks": [{"label": "y"}],
}


def _cfg(**train: Any) -> Any:
    raw = copy.deepcopy(BASE)
    raw["train"] = train
    return load_config(raw, base_dir=Path("/tmp"))


def test_defaults_change_below_the_threshold_and_say_what() -> None:
    cfg, small = small_data.resolve(_cfg(), 150)
    changed = small["changed"]
    assert small["train_cases"] == 150
    assert cfg.train.batch_size == 16 and cfg.train.epochs == 60 and cfg.train.weight_decay == 1e-2
    assert cfg.train.early_stopping.patience == 10 and cfg.fusion.dim == 32
    assert {
        "train.batch_size",
        "train.epochs",
        "train.weight_decay",
        "train.early_stopping.patience",
        "fusion.dim",
    } <= set(changed)
    text = small_data.describe(small)
    assert "150 training cases" in text and "train.small_data: off" in text


def test_what_the_config_sets_is_kept() -> None:
    raw = copy.deepcopy(BASE)
    raw["train"] = {"epochs": 5, "weight_decay": 0.0}
    raw["fusion"] = {"dim": 128}
    raw["modalities"][0]["encoder"] = {"name": "text_transformer"}
    cfg, small = small_data.resolve(load_config(raw, base_dir=Path("/tmp")), 150)
    assert cfg.train.epochs == 5 and cfg.train.weight_decay == 0.0 and cfg.fusion.dim == 128
    assert cfg.modality("report").encoder_name == "text_transformer"
    assert set(small["changed"]) == {"train.batch_size", "train.early_stopping.patience"}


def test_off_and_enough_cases_change_nothing() -> None:
    assert small_data.resolve(_cfg(small_data="off"), 50) == (_cfg(small_data="off"), {})
    assert small_data.resolve(_cfg(), small_data.SMALL_TRAIN)[1] == {}
    assert small_data.resolve(_cfg(small_data="on"), 10_000)[1]["train_cases"] == 10_000


def test_a_default_text_encoder_becomes_the_frozen_pretrained_one_where_installed() -> None:
    if not small_data.minilm_available():
        pytest.skip("fusiondx[minilm] is not installed")
    cfg, small = small_data.resolve(_cfg(), 150)
    report = cfg.modality("report")
    assert report.encoder_name == "minilm" and report.preprocessing.tokenizer == "minilm"
    assert small["changed"]["modalities[report].encoder"].startswith("minilm")
    assert cfg.modality("labs").encoder_name == "mlp"


def test_a_small_run_records_its_settings_and_a_study_still_sees_it_as_finished(
    quick_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from fusiondx.study.runner import same_config

    quick_config["train"]["small_data"] = "auto"
    quick_config["train"]["epochs"] = 2
    res = fusiondx.fit(quick_config, progress=True)
    small = res.metrics["small_data"]
    assert small["train_cases"] == res.metrics["cases"]["train"] < small_data.SMALL_TRAIN
    assert "train.weight_decay" in small["changed"] and "train.epochs" not in small["changed"]
    trained = yaml.safe_load((res.run_dir / "config.yaml").read_text())
    requested = yaml.safe_load((res.run_dir / "requested.yaml").read_text())
    assert trained["train"]["weight_decay"] == 1e-2 and requested["train"]["weight_decay"] == 1e-4
    assert "Small data (" in capsys.readouterr().err
    assert same_config(quick_config)  # a study rerun skips it instead of retraining
    # The run loads, predicts and evaluates with the settings it trained with.
    assert fusiondx.evaluate(res.run_dir).metrics["cases"] == res.metrics["cases"]["test"]
