"""Inference: latency per case and throughput in batches, eager PyTorch vs ONNX Runtime.

The default 4-modality model is exported with `fusiondx.export.export_onnx` (which checks ONNX
Runtime against PyTorch on real cases and refuses a mismatch); both then answer the same test
cases. Latency is one case at a time, as a service would see it (p50 / p99 over the cases);
throughput is cases per second in batches.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from bench._common import WORK, cohort, default_config, md_table, save

TITLE = "4. Inference: latency per case and batch throughput, eager PyTorch vs ONNX Runtime"


def _latencies(fn: Any, batches: list[Any], warmup: int = 10) -> np.ndarray:
    for b in batches[:warmup]:
        fn(b)
    out = []
    for b in batches:
        t = time.perf_counter()
        fn(b)
        out.append(time.perf_counter() - t)
    return np.asarray(out)


def run(args: Any) -> None:
    import onnxruntime as ort

    from fusiondx.data.store import prepare
    from fusiondx.engine.trainer import setup_torch
    from fusiondx.export import export_onnx, flatten
    from fusiondx.models.build import build_model

    cfg = default_config(cohort(args.cases), WORK / "runs")
    setup_torch(cfg)
    prepared = prepare(cfg)
    store = prepared.store
    model = build_model(cfg, prepared.specs, prepared.tasks, None).eval()
    tasks = [t.name for t in prepared.tasks]
    idx = store.indices("test")
    path = WORK / "inference" / "default.onnx"
    exported = export_onnx(model, tasks, store.batch(idx[:64]), path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = exported.input_names

    def eager(b: dict[str, Any]) -> Any:
        with torch.inference_mode():
            return model.predict(b["inputs"], b["mask"])

    def onnx(b: dict[str, Any]) -> Any:
        _, tensors = flatten(b["inputs"])
        return session.run(
            None, {n: t.numpy() for n, t in zip(names, [*tensors, b["mask"]], strict=True)}
        )

    singles = [store.batch(idx[i : i + 1]) for i in range(min(args.latency_cases, len(idx)))]
    # Throughput over every case of the cohort (the test split alone is one or two batches).
    every = np.arange(len(store))
    big = [
        store.batch(every[i : i + args.batch_size]) for i in range(0, len(every), args.batch_size)
    ]
    big = [b for b in big if len(b["case_id"]) == args.batch_size] or big
    rows = []
    for name, fn in (("eager PyTorch", eager), ("ONNX Runtime", onnx)):
        lat = _latencies(fn, singles) * 1000
        thr = min((_latencies(fn, big, warmup=1) for _ in range(3)), key=lambda t: t.sum())
        rows.append(
            {
                "runtime": name,
                "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)),
                "throughput": args.batch_size * len(thr) / float(thr.sum()),
            }
        )
        print(
            f"  {name}: p50 {rows[-1]['p50_ms']:.2f} ms, p99 {rows[-1]['p99_ms']:.2f} ms, "
            f"{rows[-1]['throughput']:.0f} cases/s in batches of {args.batch_size}",
            flush=True,
        )
    table = md_table(
        [
            {
                "rt": r["runtime"],
                "p50": f"{r['p50_ms']:.2f}",
                "p99": f"{r['p99_ms']:.2f}",
                "thr": f"{r['throughput']:.0f}",
            }
            for r in rows
        ],
        [
            ("rt", "runtime"),
            ("p50", "p50 ms/case"),
            ("p99", "p99 ms/case"),
            ("thr", f"cases/s (batches of {args.batch_size})"),
        ],
    )
    worst = max(r["p50_ms"] for r in rows)
    md = (
        f"Default 4-modality model, {len(singles)} test cases one at a time, and all {len(every)} cases "
        f"in batches (best of 3 passes); ONNX export parity: max difference {exported.max_abs_diff:.1e} on 64 "
        f"cases.\n\n{table}\n\nTarget ≤ 10 ms per case: "
        f"{'met' if worst <= 10 else 'not met'} (slowest p50 {worst:.2f} ms)."
    )
    save(
        "inference",
        {
            "cases": args.cases,
            "batch_size": args.batch_size,
            "parity": exported.max_abs_diff,
            "rows": rows,
        },
        md,
        TITLE,
    )


def add_arguments(p: Any) -> None:
    p.add_argument(
        "--cases", type=int, default=2000, help="built-in cohort size (test split is ~15%%)"
    )
    p.add_argument("--latency-cases", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=256)
