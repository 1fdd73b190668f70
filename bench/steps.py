"""Where time goes: each training step of a real `fusiondx fit` split into its phases.

A Lightning callback stamps the time at the hooks Lightning calls around every step: data is
from the end of the previous step (or the epoch's start) to the step's start (fetching the
batch from the loader), forward from there to just before backward (zero_grad, encoders, fusion,
heads, loss), backward up to the optimiser, optimiser from there to the step's end (Adam update
and Lightning's bookkeeping). Validation, checkpoints and the one-off decoding of the data
(reported apart) are outside the steps.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L

from bench._common import WORK, cohort, default_config, md_table, save

TITLE = "3. Where time goes: data loading, forward, backward and optimiser per training step"
PHASES = ("data", "forward", "backward", "optimizer")


class StepTimer(L.Callback):
    """Seconds per phase and epoch, summed over the epoch's training steps."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._t = 0.0

    def _lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.epochs[-1][phase] += now - self._t
        self._t = now

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.epochs.append(dict.fromkeys((*PHASES, "steps"), 0.0))
        self._t = time.perf_counter()

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self._lap("data")

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        self._lap("forward")

    def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
        self._lap("backward")

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._lap("optimizer")
        self.epochs[-1]["steps"] += 1


def run(args: Any) -> None:
    from fusiondx.data.store import prepare
    from fusiondx.engine.run import fit

    manifest = cohort(args.cases)
    cfg = default_config(
        manifest,
        WORK / "runs",
        epochs=args.epochs,
        early_stopping=None,
        batch_size=args.batch_size,
        num_workers=args.workers,
    )
    cfg = cfg.model_copy(update={"name": "bench_steps"})
    t = time.perf_counter()
    prepare(cfg)
    decode_s = time.perf_counter() - t
    timer = StepTimer()
    fit(cfg, overwrite=True, progress=False, callbacks=[timer])
    rows = []
    for i, e in enumerate(timer.epochs):
        total = sum(e[p] for p in PHASES)
        rows.append(
            {
                "epoch": i + 1,
                "steps": int(e["steps"]),
                "step_ms": 1000 * total / max(e["steps"], 1),
                **{f"{p}_share": e[p] / total for p in PHASES},
                **{f"{p}_s": e[p] for p in PHASES},
            }
        )
        print(
            f"  epoch {i + 1}: {rows[-1]['step_ms']:.1f} ms/step, data {100 * rows[-1]['data_share']:.1f}%",
            flush=True,
        )
    later = rows[1:] or rows
    data_share = max(r["data_share"] for r in later)
    table = md_table(
        [
            {
                "epoch": r["epoch"],
                "steps": r["steps"],
                "ms": f"{r['step_ms']:.1f}",
                **{p: f"{100 * r[f'{p}_share']:.1f}%" for p in PHASES},
            }
            for r in rows
        ],
        [
            ("epoch", "epoch"),
            ("steps", "steps"),
            ("ms", "ms/step"),
            ("data", "data"),
            ("forward", "forward"),
            ("backward", "backward"),
            ("optimizer", "optimiser"),
        ],
    )
    verdict = "met" if data_share < 0.10 else "not met"
    md = (
        f"`fusiondx fit` of the default 4-modality model on a {args.cases}-case built-in cohort, batch "
        f"size {args.batch_size}, {args.workers} loader workers. Reading and decoding every case once "
        f"(images, WFDB ECGs, tokenising reports, labs) took {decode_s:.1f} s before training; the steps "
        f"then read decoded tensors from memory.\n\n{table}\n\n"
        f"Data loading after the first epoch: at most **{100 * data_share:.1f}%** of step time "
        f"(target < 10%: {verdict})."
    )
    save(
        "steps",
        {
            "cases": args.cases,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "decode_seconds": decode_s,
            "epochs": rows,
        },
        md,
        TITLE,
    )


def add_arguments(p: Any) -> None:
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
