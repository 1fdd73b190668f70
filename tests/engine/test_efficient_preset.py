"""The efficient preset: what it fills in, what it leaves, and the FLOPs a run records."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import Config, load_config
from fusiondx.data.store import prepare
from fusiondx.engine.run import fit
from fusiondx.engine.rundir import load_run
from fusiondx.errors import ConfigError
from fusiondx.evaluation.complexity import flops_per_case


def _efficient(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["preset"] = "efficient"
    for m in raw["modalities"]:
        m.pop("encoder", None)
    raw["fusion"] = {"dim": 16}
    return raw


def test_preset_fills_what_the_config_leaves_open(quick_config: dict[str, Any]) -> None:
    raw = _efficient(quick_config)
    raw["modalities"][3]["encoder"] = {"name": "ft_transformer"}  # chosen: kept
    raw["modalities"][0]["encoder"] = {"options": {"dropout": 0.3}}  # options only: merged
    cfg = Config.model_validate(raw)
    enc = {m.name: (m.encoder.name, m.encoder.options) for m in cfg.modalities}
    assert enc["cxr"] == ("image_cnn", {"widths": [8, 16, 32, 64], "dropout": 0.3})
    assert enc["ecg"][0] == "signal_mobile" and enc["report"][0] == "text_transformer"
    assert enc["report"][1]["d_model"] == 48 and enc["report"][1]["num_layers"] == 1
    assert enc["labs"] == ("ft_transformer", {})
    assert cfg.fusion.name == "concat" and cfg.fusion.dim == 16
    # config.yaml round trip: the filled-in choices are written, and reading them is a no-op.
    assert Config.model_validate(cfg.model_dump(mode="json")) == cfg
    raw["fusion"] = {"name": "hybrid"}
    assert Config.model_validate(raw).fusion.name == "hybrid"


def test_preset_learning_rate_applies_only_where_the_config_sets_none(
    quick_config: dict[str, Any],
) -> None:
    raw = _efficient(quick_config)
    raw["train"].pop("lr", None)
    cfg = Config.model_validate(raw)
    assert cfg.train.lr == 3e-3 and cfg.train.epochs == quick_config["train"]["epochs"]
    assert Config.model_validate(cfg.model_dump(mode="json")) == cfg
    raw["train"]["lr"] = 5e-4  # chosen: kept
    assert Config.model_validate(raw).train.lr == 5e-4
    del raw["train"]
    assert Config.model_validate(raw).train.lr == 3e-3
    assert Config.model_validate(quick_config).train.lr == 1e-3  # no preset: untouched


def test_an_unknown_preset_is_a_config_error_at_its_key(quick_config: dict[str, Any]) -> None:
    raw = _efficient(quick_config)
    raw["preset"] = "eficient"
    with pytest.raises(ConfigError, match="preset") as err:
        load_config(raw)
    assert "Did you mean 'efficient'" in str(err.value)


def test_efficient_run_records_far_fewer_flops_of_a_whole_case(
    quick_config: dict[str, Any], one_thread: None
) -> None:
    quick_config["train"]["epochs"] = 1
    default = fit(Config.model_validate(quick_config)).run_dir
    efficient_raw = _efficient(quick_config)
    efficient_raw["name"] = "efficient"
    efficient = fit(Config.model_validate(efficient_raw)).run_dir
    flops = {
        k: json.loads((Path(d) / "metrics.json").read_text())["flops_per_case"]
        for k, d in (("default", default), ("efficient", efficient))
    }
    assert flops["efficient"] < 0.3 * flops["default"]
    # What metrics.json records is one case with every modality present.
    cfg, model, _ = load_run(efficient)
    store = prepare(cfg).store
    batch = store.batch(store.indices("test")[:1])
    whole = flops_per_case(model, batch["inputs"], torch.ones_like(batch["mask"]))
    assert flops["efficient"] == whole


def test_list_presets_names_the_parts() -> None:
    result = CliRunner().invoke(app, ["list", "presets"])
    assert result.exit_code == 0
    for part in ("efficient", "image_cnn", "signal_mobile", "concat", "lr=0.003"):
        assert part in result.output
