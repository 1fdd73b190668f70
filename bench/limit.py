"""Against the limit: achieved training FLOP/s of the default model as a share of matmul peak.

The peak is what this machine's BLAS reaches on a large float32 matrix product with the same
thread count; the model's FLOPs per case (forward + backward) are counted by
torch.utils.flop_counter on a real training batch; achieved FLOP/s = FLOPs per case x cases per
second over whole training steps (forward, loss, backward, optimiser) on the built-in cohort.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench._common import WORK, best_of, cohort, default_config, md_table, save

TITLE = "2. Against the limit: training FLOP/s as a share of the machine's matmul peak"


def matmul_peak(n: int = 2048, repeat: int = 5) -> float:
    """float32 FLOP/s of an n x n matrix product (2 n^3 FLOPs), best of ``repeat``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm up the BLAS thread pool
    return 2 * n**3 / best_of(lambda: torch.mm(a, b), repeat)


def training_setup(cfg: Any) -> tuple[Any, Any, Any]:
    """The model, its training module and the training loader, as `fusiondx fit` builds them."""
    from fusiondx.data.store import prepare
    from fusiondx.engine.class_weights import class_weights
    from fusiondx.engine.datamodule import CaseDataModule
    from fusiondx.engine.task import FusionTask
    from fusiondx.engine.trainer import setup_torch
    from fusiondx.models.build import build_model

    setup_torch(cfg)
    prepared = prepare(cfg)
    model = build_model(cfg, prepared.specs, prepared.tasks, class_weights(cfg, prepared))
    task = FusionTask(
        model, prepared.tasks, cfg.train, {t.name: t.weight for t in cfg.tasks}, seed=cfg.seed
    )
    return model, task, CaseDataModule.from_config(cfg, prepared.store).train_dataloader()


def step(task: Any, opt: torch.optim.Optimizer, batch: dict[str, Any]) -> None:
    """One training step: FusionTask.training_step, then what Lightning's optimiser loop does."""
    loss = task.training_step(batch, 0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def train_flops_per_case(task: Any, batch: dict[str, Any]) -> float:
    task.train()
    counter = FlopCounterMode(display=False)
    with counter:
        task.training_step(batch, 0).backward()
    task.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch["case_id"])


def measure(cases: int, batch_sizes: list[int], epochs: int) -> list[dict[str, Any]]:
    rows = []
    manifest = cohort(cases)
    for bs in batch_sizes:
        cfg = default_config(manifest, WORK / "runs", batch_size=bs)
        model, task, loader = training_setup(cfg)
        opt = torch.optim.Adam(task.parameters(), lr=cfg.train.lr)
        flops = train_flops_per_case(task, next(iter(loader)))
        task.train()
        for i, batch in enumerate(loader):  # warm-up epoch (allocator, thread pools)
            step(task, opt, batch)
            if i == 5:
                break
        n, t = 0, time.perf_counter()
        for _ in range(epochs):
            for batch in loader:
                step(task, opt, batch)
                n += len(batch["case_id"])
        seconds = time.perf_counter() - t
        rows.append(
            {
                "batch_size": bs,
                "train_flops_per_case": flops,
                "cases_per_s": n / seconds,
                "achieved_flops": flops * n / seconds,
            }
        )
        print(
            f"  batch {bs}: {n / seconds:.0f} cases/s, {flops * n / seconds / 1e9:.2f} GFLOP/s",
            flush=True,
        )
    return rows


def run(args: Any) -> None:
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(
        f"matmul peak: {peak / 1e9:.1f} GFLOP/s with {torch.get_num_threads()} threads", flush=True
    )
    rows = measure(args.cases, args.batch_sizes, args.epochs)
    for r in rows:
        r["fraction_of_peak"] = r["achieved_flops"] / peak
    best = max(rows, key=lambda r: r["fraction_of_peak"])
    table = md_table(
        [
            {
                "bs": r["batch_size"],
                "flops": f"{r['train_flops_per_case'] / 1e6:.1f}",
                "cps": f"{r['cases_per_s']:.0f}",
                "ach": f"{r['achieved_flops'] / 1e9:.2f}",
                "frac": f"{100 * r['fraction_of_peak']:.0f}%",
            }
            for r in rows
        ],
        [
            ("bs", "batch size"),
            ("flops", "train MFLOP/case (fwd+bwd)"),
            ("cps", "cases/s"),
            ("ach", "achieved GFLOP/s"),
            ("frac", "share of peak"),
        ],
    )
    verdict = "met" if best["fraction_of_peak"] >= 0.30 else "not met"
    md = (
        f"Matmul peak (float32, 2048x2048, {args.threads} threads): **{peak / 1e9:.1f} GFLOP/s**. "
        f"Default 4-modality model (`make demo`'s) on a {args.cases}-case built-in cohort, "
        f"{args.epochs} epoch(s) of whole training steps after a warm-up:\n\n{table}\n\n"
        f"Best: **{100 * best['fraction_of_peak']:.0f}% of peak** at batch size {best['batch_size']} "
        f"(target ≥ 30%: {verdict})."
    )
    save(
        "limit",
        {"peak_flops": peak, "cases": args.cases, "epochs": args.epochs, "rows": rows},
        md,
        TITLE,
    )


def add_arguments(p: Any) -> None:
    p.add_argument("--cases", type=int, default=2000, help="built-in cohort size")
    p.add_argument(
        "--batch-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[32, 128],
        help="comma-separated training batch sizes",
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=max(1, min(8, __import__("os").cpu_count() or 1)))
