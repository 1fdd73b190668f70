"""The efficient preset against the default model on the built-in cohort (issue 18).

Both models are the demo's four-modality config (32x32 chest images, 50 Hz ECGs, the report,
nine labs) on the same cohort, split and seed; the efficient one sets ``preset: efficient``
(a quarter-width CNN for the image, the depthwise-separable signal encoder, a one-layer
width-48 transformer for the report, a narrow MLP, ``concat``, learning rate 3e-3) in place of
the default encoders and the demo's 1e-3. For each:
forward FLOPs of one case with every modality present (what ``fit`` records), parameters, test
AUROC with its 95% bootstrap CI (and the paired difference, efficient minus default), and the
ONNX export in float and in int8 (``fusiondx export --int8``): size, latency per case, AUROC.

Goals: at least 80% fewer FLOPs per case than the default model, at most 0.01 AUROC lost,
and an int8 ONNX file under 2 MB.

Example: python -m bench efficient --cases 1500 --epochs 20   (about 15 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from bench._common import WORK, cohort, default_config, md_table, save

GOAL_FLOPS_CUT = 0.80
GOAL_AUROC_LOSS = 0.01
GOAL_INT8_BYTES = 2_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1500, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping on)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the CIs")
    p.add_argument(
        "--tolerance", type=float, default=0.005, help="int8 AUROC drop allowed (export --int8)"
    )


def efficient_config(cfg: Any) -> Any:
    """``cfg`` with ``preset: efficient`` choosing every encoder, the fusion and the learning rate."""
    from fusiondx.config import Config

    raw = cfg.model_dump(mode="json", exclude_unset=True)
    raw = copy.deepcopy(raw)
    raw["name"] = "efficient"
    raw["preset"] = "efficient"
    for m in raw["modalities"]:
        m.pop("encoder", None)
    raw["fusion"] = {k: v for k, v in raw.get("fusion", {}).items() if k == "dim"}
    raw.get("train", {}).pop("lr", None)  # the preset's learning rate, not the demo's
    return Config.model_validate(raw)


def _scorers(run_dir: Path) -> tuple[Any, Any, Any]:
    import pandas as pd

    from fusiondx.study.analysis import task_info
    from fusiondx.tasks import task_type

    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"case_id": str})
    frame = frame[frame["split"] == "test"].set_index("case_id").sort_index()
    info = task_info(run_dir, "diagnosis")
    tt = task_type(info)
    return tt.case_scores(info, frame)["auroc"], tt.strata(info, frame), frame.index


def _int8(run_dir: Path, tolerance: float) -> dict[str, Any]:
    from fusiondx.errors import RunError
    from fusiondx.export import export_run
    from fusiondx.quantize import quantize_run

    export_run(run_dir, progress=False, overwrite=True)
    try:
        quantize_run(run_dir, tolerance=tolerance, progress=False, overwrite=True)
    except RunError as err:
        print(f"  int8 refused: {err.what}", flush=True)
    return json.loads((run_dir / "int8.json").read_text())


def run(args: argparse.Namespace) -> None:
    import fusiondx
    from fusiondx.evaluation.bootstrap import paired_difference, pooled_ci

    out = WORK / "efficient"
    manifest = cohort(args.cases)
    base = default_config(manifest, out, epochs=args.epochs, progress=False)
    base = base.model_copy(update={"name": "default"})
    models = {"default": base, "efficient": efficient_config(base)}
    runs, rows, raw = {}, [], {}
    for key, cfg in models.items():
        print(f"Training the {key} model ...", flush=True)
        result = fusiondx.fit(cfg, overwrite=True, progress=False)
        runs[key] = Path(result.run_dir)
        print(f"Exporting {key} to ONNX, float and int8 ...", flush=True)
        raw[key] = {"metrics": result.metrics, "int8": _int8(runs[key], args.tolerance)}
    scores = {k: _scorers(d) for k, d in runs.items()}
    if not scores["default"][2].equals(scores["efficient"][2]):
        raise SystemExit("the two models were tested on different cases")
    n = len(scores["default"][2])
    strata = scores["default"][1]
    for key in models:
        m, q = raw[key]["metrics"], raw[key]["int8"]
        ci = pooled_ci([scores[key][0]], n, strata, n_boot=args.n_boot)
        t = q["tasks"]["diagnosis"]
        raw[key]["auroc"] = ci
        rows.append(
            {
                "model": key,
                "flops": f"{m['flops_per_case'] / 1e6:.2f} M",
                "params": f"{m['n_parameters'] / 1e3:.0f} k",
                "auroc": f"{ci['mean']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
                "float_mb": f"{q['float_bytes'] / 1e6:.2f}",
                "int8_mb": f"{q['int8_bytes'] / 1e6:.2f}",
                "int8_auroc": f"{t['int8']:.3f} ({'kept: ' + q['recipe'] if q['kept'] else 'refused'})",
                "ms": f"{q['float_ms_per_case']:.2f} / {q['int8_ms_per_case']:.2f}",
            }
        )
    diff = paired_difference(
        [scores["efficient"][0]], [scores["default"][0]], n, strata, n_boot=args.n_boot
    )
    cut = (
        1
        - raw["efficient"]["metrics"]["flops_per_case"]
        / raw["default"]["metrics"]["flops_per_case"]
    )
    loss = -diff["difference"]
    int8_bytes = raw["efficient"]["int8"]["int8_bytes"]
    goals = [
        ("FLOPs per case cut", f"{cut:.1%}", f">= {GOAL_FLOPS_CUT:.0%}", cut >= GOAL_FLOPS_CUT),
        ("AUROC lost", f"{loss:+.3f}", f"<= {GOAL_AUROC_LOSS}", loss <= GOAL_AUROC_LOSS),
        (
            "efficient int8 ONNX size",
            f"{int8_bytes / 1e6:.2f} MB",
            "< 2 MB",
            int8_bytes < GOAL_INT8_BYTES,
        ),
    ]
    md = md_table(
        rows,
        [
            ("model", "model"),
            ("flops", "FLOPs / case"),
            ("params", "parameters"),
            ("auroc", f"test AUROC [95% CI] ({n} cases)"),
            ("float_mb", "ONNX MB"),
            ("int8_mb", "int8 ONNX MB"),
            ("int8_auroc", "int8 AUROC"),
            ("ms", "ms / case float / int8"),
        ],
    )
    md += (
        f"\n\nEfficient - default: AUROC {diff['difference']:+.3f} "
        f"[{diff['low']:+.3f}, {diff['high']:+.3f}], p = {diff['p_value']:.2g} (paired bootstrap, "
        f"{args.n_boot} replicates).\n\n"
        + md_table(
            [
                {"goal": g, "got": v, "target": t, "met": "yes" if ok else "**no**"}
                for g, v, t, ok in goals
            ],
            [("goal", "goal"), ("got", "measured"), ("target", "target"), ("met", "met")],
        )
        + f"\n\nFLOPs: one case with every modality present (torch.utils.flop_counter, matrix "
        f"products and convolutions). int8: static QDQ, per-channel, calibrated on training "
        f"cases, the first recipe within tolerance {args.tolerance} AUROC kept; latency: median of single-case calls in ONNX "
        f"Runtime. {args.cases} cases, at most {args.epochs} epochs with early stopping."
    )
    print(md)
    results = {
        "cases": args.cases,
        "epochs": args.epochs,
        "n_test": n,
        "models": {
            k: {
                "flops_per_case": v["metrics"]["flops_per_case"],
                "n_parameters": v["metrics"]["n_parameters"],
                "auroc": v["auroc"],
                "int8": v["int8"],
            }
            for k, v in raw.items()
        },
        "efficient_minus_default": diff,
        "goals": {g: {"measured": v, "target": t, "met": ok} for g, v, t, ok in goals},
    }
    save("efficient", results, md, "The efficient preset: FLOPs, AUROC and int8 size")
