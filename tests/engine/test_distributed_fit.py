"""Training on several processes: shards, launchers, and 2 CPU processes (gloo) against 1.

Tolerance of the integration test: two processes with a batch of B cases each take, step by
step, the same cases as one process with a batch of 2B (EpochShuffle's shards interleave), and
DDP averages their gradients into the gradient of those 2B cases. What remains is the order of
floating-point sums, so with neither batch norm nor dropout the two trainings agree to ~1e-7;
the test allows 1e-4. Batch norm (the image and ECG CNNs) normalises over each process's own B
cases and dropout draws other masks, which moves results like another seed does: the test
therefore uses the text and tabular modalities without dropout, and bench/distributed.py
measures the difference on the 4-modality cohort.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import fusiondx
from fusiondx.config import load_config
from fusiondx.data.dataset import EpochShuffle
from fusiondx.engine.distributed import check_launch, launched_externally, launched_rank
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import ConfigError

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS")


@pytest.mark.parametrize("n", [10, 11])
def test_shards_of_two_processes_are_the_batches_of_one(n: int) -> None:
    for epoch in range(3):
        one = EpochShuffle(n, seed=3)
        one.set_epoch(epoch)
        order = list(one)
        shards = []
        for rank in range(2):
            s = EpochShuffle(n, seed=3, rank=rank, world=2)
            s.set_epoch(epoch)
            shards.append(list(s))
        # every process takes as many steps; padding repeats the order's start, once at most
        assert len(shards[0]) == len(shards[1]) == len(EpochShuffle(n, 3, world=2)) == -(-n // 2)
        assert sorted(set(shards[0] + shards[1])) == list(range(n))
        b = 2  # batch k of each process together: batch k of one process with batch 2b
        for k in range(n // (2 * b)):
            joint = shards[0][k * b : (k + 1) * b] + shards[1][k * b : (k + 1) * b]
            assert sorted(joint) == sorted(order[2 * k * b : 2 * (k + 1) * b])


def test_launched_rank_reads_each_launcher() -> None:
    assert launched_rank({}) == 0 and not launched_externally({})
    torchrun = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}
    assert launched_rank(torchrun) == 3 and launched_externally(torchrun)
    assert launched_rank({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}) == 2
    # a one-task SLURM job (srun -n 1, or an interactive allocation) is not a launcher
    assert launched_rank({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == 0
    assert not launched_externally({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"})
    # Lightning's re-run of the command: LOCAL_RANK 1.. in the copies, 0 left in the first
    assert launched_rank({"LOCAL_RANK": "1", "NODE_RANK": "0"}) > 0
    assert launched_rank({"LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "2"}) == 0


def test_python_api_refuses_processes_nobody_starts(
    quick_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    raw = copy.deepcopy(quick_config)
    raw["train"].update(devices=2, strategy="ddp")
    cfg = load_config(raw)
    with pytest.raises(ConfigError, match="needs 2 processes") as err:
        fusiondx.fit(cfg)
    assert "torchrun --nproc-per-node 2" in str(err.value)
    assert not cfg.run_dir.exists()  # refused before the run folder is made
    check_launch(cfg, launch=True)  # the CLI's way: Lightning re-runs the command
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launch(cfg, launch=False)  # under torchrun


def _config(quick_config: dict[str, Any], name: str, devices: int) -> dict[str, Any]:
    raw = copy.deepcopy(quick_config)
    raw["name"] = name
    raw["modalities"] = [m for m in raw["modalities"] if m["name"] in ("report", "labs")]
    for m in raw["modalities"]:
        m["encoder"] = {"options": {"dropout": 0.0}}
    raw["fusion"]["options"] = {"dropout": 0.0}
    raw["train"].update(
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        batch_size=32 // devices,
        lr=3e-3,
    )
    return raw


def test_two_cpu_processes_train_like_one(quick_config: dict[str, Any], tmp_path: Path) -> None:
    one = fusiondx.fit(_config(quick_config, "one", 1), progress=False)
    raw = _config(quick_config, "two", 2)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    src = str(Path(fusiondx.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "fusiondx", "fit", str(path), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Wrote run to") == 1  # rank 1 trained silently; rank 0 reported
    two = RunDir(Path(raw["output_dir"]) / "two")
    metrics = json.loads(two.metrics_file.read_text())
    for split in ("val", "test"):
        for k, v in one.metrics[split]["diagnosis"].items():
            if isinstance(v, float) and np.isfinite(v):
                assert metrics[split]["diagnosis"][k] == pytest.approx(v, abs=1e-4), (split, k)
    # the post-hoc layer and predictions ran once, on rank 0, over every val and test case
    a, b = pd.read_csv(one.run_dir / "predictions.csv"), pd.read_csv(two.predictions_file)
    assert b["case_id"].is_unique and list(a["case_id"]) == list(b["case_id"])
    probs = [c for c in a.columns if c.startswith("diagnosis_prob")]
    assert probs and np.allclose(a[probs], b[probs], atol=1e-4)
    ca, cb = pd.read_csv(one.run_dir / "logs/metrics.csv"), pd.read_csv(two.curves_file)
    assert list(cb["epoch"]) == [0, 1]  # one writer: each epoch's row once
    assert np.allclose(ca["val/loss"], cb["val/loss"], atol=1e-4)
    assert sorted(p.name for p in two.path.iterdir()) == sorted(
        p.name for p in one.run_dir.iterdir()
    )  # no lock or half-written file left by either process
    cfg, model, _ = two.load()
    assert cfg.train.devices == 2 and isinstance(next(model.parameters()), torch.Tensor)
