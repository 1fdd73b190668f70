"""`federate` in simulation: Flower's server loop over three in-process sites of the built-in
cohort, 2 rounds of 1 local epoch; and the bad inputs that stop it before any training."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fusiondx.federated  # noqa: F401  (before Flower: it turns Flower's telemetry off)

pytest.importorskip("flwr")

from fusiondx.config import load_config  # noqa: E402
from fusiondx.errors import ConfigError  # noqa: E402
from fusiondx.federated import federate  # noqa: E402


@pytest.fixture(scope="module")
def fed_cfg(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    d = copy.deepcopy(quick_base)
    d["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    d["output_dir"] = str(tmp_path_factory.mktemp("fedsim"))
    d["train"]["threads"] = 1
    return load_config(d)


def test_simulation_two_rounds(fed_cfg: Any, tmp_path: Path, one_thread: Any) -> None:
    r = federate(
        fed_cfg, "site", rounds=2, local_epochs=1, out_dir=tmp_path, compare=False, n_boot=50
    )
    f = r["federation"]
    assert f["rounds_run"] == 2
    assert [p[0] for p in f["per_round"]["auroc"]] == [1, 2]
    # Only weights travel: per round each of 3 sites gets the model twice (fit, evaluate) and
    # sends it back once; every message carries the same arrays.
    weights = np.load(tmp_path / "federated" / "weights.npz")
    model_bytes = sum(weights[k].nbytes for k in weights.files)
    assert f["bytes_to_sites"] == 2 * 3 * 2 * model_bytes
    assert f["bytes_from_sites"] == 2 * 3 * model_bytes
    row = r["table"][0]
    assert row["model"] == "federated"
    assert set(row["cells"]) == {"site_A", "site_B", "site_C", "pooled"}
    assert (
        sum(row["cells"][s]["n"] for s in ("site_A", "site_B", "site_C"))
        == row["cells"]["pooled"]["n"]
    )
    assert 0.0 <= row["cells"]["pooled"]["mean"] <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["federation"]["bytes_total"] == f["bytes_to_sites"] + f["bytes_from_sites"]
    assert "| federated |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "rounds.png").stat().st_size > 1000


def test_unknown_strategy(fed_cfg: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown strategy 'fedsgd'") as e:
        federate(fed_cfg, "site", strategy="fedsgd", out_dir=tmp_path)
    assert "fedavg" in (e.value.fix or "")
    assert not (tmp_path / "manifests").exists()  # refused before anything was written


def test_bad_rounds_and_mode(fed_cfg: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--rounds"):
        federate(fed_cfg, "site", rounds=0, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="Unknown mode 'cluster'"):
        federate(fed_cfg, "site", mode="cluster", out_dir=tmp_path)


def test_cli_names_the_missing_column(fed_cfg: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fusiondx.cli import app

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(fed_cfg.to_yaml())
    res = CliRunner().invoke(
        app, ["federate", str(cfg_file), "--site-column", "hospital", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "no site column 'hospital'" in res.output


@pytest.mark.slow
def test_simulation_is_reproducible(fed_cfg: Any, tmp_path: Path, one_thread: Any) -> None:
    """The same seed gives the same global model (sites trained in a fixed order)."""
    for name in ("a", "b"):
        federate(fed_cfg, "site", rounds=1, out_dir=tmp_path / name, compare=False, n_boot=10)
    a = np.load(tmp_path / "a" / "federated" / "weights.npz")
    b = np.load(tmp_path / "b" / "federated" / "weights.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
