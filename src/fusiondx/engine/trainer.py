"""The process and the Lightning Trainer as ``fit`` runs them: threads, seeds, logging, stopping."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from fusiondx.config import Config


def cpu_budget() -> int:
    """The cores this process may use: ``FUSIONDX_THREADS`` when set (several trainings sharing
    one machine, e.g. test workers: two processes of two threads on two cores run several
    times slower than one of each), else every core."""
    env = os.environ.get("FUSIONDX_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def setup_torch(cfg: Config) -> None:
    """Set up this process for a run: torch threads (``train.threads``, else up to 8 of
    :func:`cpu_budget`), every
    global random stream seeded with ``cfg.seed``, Lightning's banners silenced.

    Call it before the data is prepared and the model is built: both draw from the seeded
    streams, and the same seed must give the same numbers.
    """
    # Lightning's banners (GPU/TPU availability, tips) say nothing about this run.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Several processes on one machine's CPU share its cores instead of each taking them all.
    per_machine = cfg.train.devices if cfg.train.accelerator == "cpu" else 1
    threads = cfg.train.threads or max(1, min(cpu_budget(), 8) // per_machine)
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)


# Below this many forward FLOPs per training batch, one torch thread trains faster than two:
# the kernels are too small to share, and a second thread's wake-ups cost more than it saves
# (the labs-only model, 3.8 MFLOPs per batch of 32: 0.09 s per epoch on one thread, 0.13 on two,
# 0.48 on two beside a busy process; the default model, 1,000 MFLOPs per batch: 2.0 against
# 1.5 s; `python -m bench threads`, BENCHMARKS.md section 13).
ONE_THREAD_BELOW_FLOPS = 8e6


def threads_for_model(cfg: Config, flops_per_case: int) -> int:
    """Torch threads for training a model of ``flops_per_case`` forward FLOPs: one when a
    training batch is below ``ONE_THREAD_BELOW_FLOPS`` and ``train.threads`` is not set, else
    what :func:`setup_torch` chose. Sets it and returns it."""
    if cfg.train.threads is None and flops_per_case * cfg.train.batch_size < ONE_THREAD_BELOW_FLOPS:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def build_trainer(
    cfg: Config, callbacks: Sequence[L.Callback], *, progress: bool, root: Path
) -> L.Trainer:
    """The Trainer of a run: ``cfg.train``'s epochs, accelerator, devices, nodes, strategy,
    precision and determinism; no logger and no checkpointing of its own (the callbacks do both).

    Several processes: the data module shards the training and validation splits itself
    (:class:`~fusiondx.engine.datamodule.CaseDataModule`), so Lightning's distributed sampler,
    which would replace the exact-resume shuffle, is off.
    """
    return L.Trainer(
        max_epochs=cfg.train.epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        num_nodes=cfg.train.num_nodes,
        strategy=cfg.train.strategy,
        use_distributed_sampler=False,
        # A free string in the config, which Lightning checks (and names the valid ones).
        precision=cfg.train.precision,  # type: ignore[arg-type]
        deterministic=cfg.train.deterministic,
        logger=False,
        callbacks=list(callbacks),
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=root,
    )


def train(
    trainer: L.Trainer,
    module: L.LightningModule,
    data: L.LightningDataModule,
    resume_from: Path | None = None,
) -> float:
    """``trainer.fit``, continued from ``resume_from`` if given; returns the seconds it took.

    SIGTERM stops the training like Ctrl-C: a ``KeyboardInterrupt`` (Lightning would otherwise
    end with exit status 0, as if the run had finished).
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings(
            "ignore", message=".*too few batches.*|.*number of training batches.*"
        )
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # Several processes: validation is gathered before it is scored (FusionTask), so every
        # process logs the same value and Lightning's advice to average them does not apply.
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        # A frozen pretrained encoder (minilm) keeps its backbone in eval mode on purpose.
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        try:
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(resume_from) if resume_from else None,
                weights_only=True,
            )
        except SIGTERMException:
            raise KeyboardInterrupt("SIGTERM") from None
    return time.perf_counter() - start
