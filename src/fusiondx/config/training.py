"""The ``train`` section: optimisation, early stopping, hardware and the small-data policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fusiondx.config._strict import _Strict


class EarlyStoppingConfig(_Strict):
    monitor: str | None = None
    """Validation metric that early stopping and the best checkpoint follow: a metric of the first
    task (auroc, f1, iou, dice_lesion, bleu4, c_index, ...), '<task>/<metric>' for another task,
    or 'loss'. Default: the first task's primary metric (auroc for classification)."""
    patience: int = Field(5, ge=1)
    mode: Literal["max", "min"] | None = None


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    lr_decay: Literal["cosine", "step", "plateau", "none"] = "cosine"
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    task_weighting: Literal["fixed", "uncertainty"] = "fixed"
    """Multi-task: sum the task losses with the fixed tasks[].weight, or learn the weights by
    homoscedastic uncertainty (Kendall et al., 2018), each task's loss scaled by exp(-s) + s."""
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    """Probability of hiding each present modality of a training case (never all of them)."""
    num_workers: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "cpu"
    devices: int = Field(1, ge=1)
    """Processes (one per device) on each node. Above 1 the training is data-parallel: each
    process trains on its shard of every batch of ``batch_size`` cases (the effective batch is
    ``batch_size * devices * num_nodes``). See docs/scaling.md."""
    num_nodes: int = Field(1, ge=1)
    """Machines taking part in the training (each with ``devices`` processes)."""
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    """Lightning's multi-process strategy: 'ddp' (gloo on CPU, NCCL on GPU), 'fsdp' (sharded
    weights; GPU), or 'auto' (one process: none; more: ddp)."""
    precision: str = "32-true"
    deterministic: bool = True
    progress: bool = True
    small_data: Literal["auto", "on", "off"] = "auto"
    """Below 400 training cases ('auto') or always ('on'), settings left at their defaults are
    changed for small cohorts (batch 16, up to 60 epochs, weight decay 1e-2, 32-wide
    embeddings, the frozen MiniLM text encoder); 'off' keeps them. See engine/small_data.py."""
