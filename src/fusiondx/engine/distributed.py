"""Training on several processes (Lightning's DDP/FSDP): who this process is, and what it shares.

One process per device, on one machine or many. Every process prepares the same data (the
decoded-case cache is shared and written atomically, so they never read a half-written file),
builds the same model from the same seed and trains on its shard of each batch; Lightning
averages the gradients. Only the process of global rank 0 writes the run folder: the lock,
config, splits, training curves, checkpoints, and, after training, the post-hoc layer,
predictions and metrics on the whole test split. The others return once training is over.

Three ways to start the processes, told apart by the environment they leave:
- ``fusiondx fit`` with ``train.devices > 1``: Lightning re-runs the same command once per extra
  device (``LOCAL_RANK``/``NODE_RANK`` set in the copies);
- ``torchrun`` (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``), on one machine or many;
- SLURM's ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``), which Lightning detects by itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from fusiondx.config import Config
from fusiondx.errors import ConfigError


def world_size(cfg: Config) -> int:
    """Processes the config trains on: ``devices * num_nodes``."""
    return cfg.train.devices * cfg.train.num_nodes


def launched_externally(env: Mapping[str, str] | None = None) -> bool:
    """Whether a launcher (torchrun, SLURM with several tasks, or Lightning's own re-run of the
    command) started this process as one of several."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return True
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in env:
        return True
    return int(env.get("LOCAL_RANK", "0") or 0) > 0


def launched_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's global rank as its launcher set it; 0 when it is the first or the only one.

    Read before the Trainer exists: the processes that are not rank 0 must not take the run
    folder's lock or write its inputs, which happens before training starts.
    """
    env = os.environ if env is None else env
    if "RANK" in env:
        return int(env["RANK"])
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    local, node = int(env.get("LOCAL_RANK", "0") or 0), int(env.get("NODE_RANK", "0") or 0)
    # Lightning's re-run copies: node-major numbering, LOCAL_RANK 1.. on each node.
    per_node = int(env.get("LOCAL_WORLD_SIZE", "0") or 0) or 1
    return node * per_node + local if (local or node) else 0


def check_launch(cfg: Config, *, launch: bool) -> None:
    """Refuse a multi-process config that nobody will start the other processes of.

    With ``launch`` (the ``fusiondx fit`` command, or a script run as ``python script.py``)
    Lightning starts them by re-running the command. Called from a notebook, a test session or
    any other program, re-running ``sys.argv`` would start that program again instead.
    """
    if world_size(cfg) == 1 or launch or launched_externally():
        return
    raise ConfigError(
        f"train.devices: {cfg.train.devices} with train.num_nodes: {cfg.train.num_nodes} needs "
        f"{world_size(cfg)} processes, and fusiondx.fit() called from Python does not start them.",
        fix="run `fusiondx fit config.yaml` (it starts one process per device), start your script "
        f"with `torchrun --nproc-per-node {cfg.train.devices} script.py`, or pass "
        "fusiondx.fit(..., launch=True) from a script run as `python script.py`",
    )


def gather(obj: Any, world: int) -> list[Any]:
    """``obj`` of every process, in rank order (a list of one without a process group).

    For Python objects of any shape (predictions of generation heads are lists of strings);
    tensors should be on the CPU.
    """
    if world <= 1 or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def cpu(x: Any) -> Any:
    """Tensors of a (nested) structure on the CPU, for :func:`gather`."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, dict):
        return {k: cpu(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(cpu(v) for v in x)
    return x
