"""The integration test: Flower's gRPC server in this process and a real client process per
site on loopback (a free port), FedProx for 2 rounds; the rounds ran and metrics came back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import fusiondx.federated  # noqa: F401  (before Flower: it turns Flower's telemetry off)

pytest.importorskip("flwr")

from fusiondx.config import load_config  # noqa: E402
from fusiondx.federated import federate  # noqa: E402


def test_server_and_client_processes(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path: Path
) -> None:
    d = copy.deepcopy(quick_base)
    d["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    d["output_dir"] = str(tmp_path / "runs")
    d["train"]["threads"] = 1
    cfg = load_config(d)
    out = tmp_path / "fed"
    r = federate(
        cfg,
        "site",
        rounds=2,
        strategy="fedprox",
        proximal_mu=0.1,
        local_epochs=1,
        out_dir=out,
        mode="processes",
        compare=False,
        n_boot=50,
        timeout_s=240,  # every wait (connecting, each round) is bounded
    )
    f = r["federation"]
    assert f["mode"] == "processes" and f["strategy"] == "fedprox"
    assert f["rounds_run"] == 2
    # Each site's own process evaluated the global model every round and its metric came back.
    for site in ("site_A", "site_B", "site_C"):
        assert [p[0] for p in f["per_round"][f"site:{site}"]] == [1, 2]
        log = (out / "sites" / site / "client.log").read_text()
        assert "Disconnect and shut down" in log
    assert f["bytes_from_sites"] > 0 and f["bytes_to_sites"] == 2 * f["bytes_from_sites"]
    assert json.loads((out / "results.json").read_text())["table"][0]["model"] == "federated"
