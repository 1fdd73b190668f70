"""Calibration and conformal coverage, measured (issue 17).

1. **Over-confident model**: the default 4-modality model on a built-in cohort trained long
   (``--epochs``, no early stopping, no weight decay) so its test probabilities are
   over-confident; the test ECE (fixed and adaptive bins) and Brier score before and after the
   temperature scaling ``fit`` fitted on validation. Target: the ECE at least halves.
2. **Conformal coverage** at the default nominal 90% on test: the same over-confident run, the
   default model (early stopping) on the built-in cohort, and PTB-XL 500 (ECG + metadata) where
   ``../shared/data`` holds it; coverage, mean set size and the share referred, overall and per
   class. Target: within 3 points of 90%. (Coverage is a mean over test cases: with n test cases
   its binomial standard error is sqrt(0.09 / n), e.g. 2.4 points at 150 cases, so a small
   test split can miss the band by chance; the table gives n.)

Example: python -m bench posthoc --cases 1000 --epochs 40   (about 30 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any

from bench._common import ROOT, WORK, cohort, default_config, md_table, save

SHARED = ROOT.parent / "shared" / "data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1000, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=60, help="epochs of the over-confident run")
    p.add_argument("--no-ptbxl", action="store_true", help="skip PTB-XL even where present")


def _fit(cfg: Any) -> dict[str, Any]:
    import fusiondx

    return fusiondx.fit(cfg, overwrite=True, progress=False).metrics


def _row(title: str, metrics: dict[str, Any], task: str) -> dict[str, Any]:
    test = metrics["test"][task]
    cal, conf = test.get("calibration") or {}, test.get("conformal") or {}
    b, a = cal.get("before") or {}, cal.get("after") or {}
    per = conf.get("per_class") or {}
    return {
        "model": title,
        "n_test": metrics["cases"]["test"],
        "auroc": test.get("auroc"),
        "ece_before": b.get("ece"),
        "ece_after": a.get("ece"),
        "ece_ratio": (a["ece"] / b["ece"]) if b.get("ece") else None,
        "aece_before": b.get("ece_adaptive"),
        "aece_after": a.get("ece_adaptive"),
        "brier_before": b.get("brier"),
        "brier_after": a.get("brier"),
        "coverage": conf.get("coverage"),
        "set_size": conf.get("mean_set_size"),
        "referred": conf.get("referred"),
        "per_class": {k: (v.get("coverage"), v.get("mean_set_size")) for k, v in per.items()},
        "threshold": (test.get("threshold") or {}).get("described"),
    }


def run(args: argparse.Namespace) -> None:
    out = WORK / "posthoc"
    manifest = cohort(args.cases)
    rows = []
    long_cfg = default_config(
        manifest, out, epochs=args.epochs, early_stopping=None, weight_decay=0.0, progress=False
    )
    long_cfg = long_cfg.model_copy(update={"name": "overconfident"})
    print(f"Training the over-confident model ({args.epochs} epochs) ...", flush=True)
    rows.append(
        _row(
            f"built-in {args.cases}, {args.epochs} epochs, no early stopping",
            _fit(long_cfg),
            "diagnosis",
        )
    )
    print("Training the default model ...", flush=True)
    rows.append(
        _row(
            f"built-in {args.cases}, default training",
            _fit(default_config(manifest, out, progress=False)),
            "diagnosis",
        )
    )
    if SHARED.is_dir() and not args.no_ptbxl:
        from fusiondx.config import load_config
        from fusiondx.datasets.prepare import prepare_dataset

        ptbxl = prepare_dataset(
            "ptbxl", SHARED / "ptbxl500", out / "ptbxl", progress=False, report=False
        )
        cfg = load_config(ptbxl.config)
        cfg = cfg.model_copy(update={"output_dir": out, "name": "ptbxl500"})
        print("Training on PTB-XL 500 ...", flush=True)
        rows.append(_row("PTB-XL 500, ECG + metadata", _fit(cfg), cfg.tasks[0].name))
    shown = copy.deepcopy(rows)
    for r in shown:
        r["per_class"] = "; ".join(
            f"{k} {c:.3f} / {s:.2f}" for k, (c, s) in r["per_class"].items() if c is not None
        )
        for k, v in r.items():
            if isinstance(v, float):
                r[k] = f"{v:.3f}"
            elif v is None:
                r[k] = "n/a"
    table = md_table(
        shown,
        [
            ("model", "model"),
            ("n_test", "test cases"),
            ("auroc", "AUROC"),
            ("ece_before", "ECE before"),
            ("ece_after", "ECE after"),
            ("ece_ratio", "after / before"),
            ("aece_before", "adaptive ECE before"),
            ("aece_after", "adaptive ECE after"),
            ("brier_before", "Brier before"),
            ("brier_after", "Brier after"),
            ("coverage", "coverage (nominal 0.90)"),
            ("set_size", "mean set size"),
            ("referred", "referred"),
            ("per_class", "per class: coverage / size"),
        ],
    )
    note = (
        "\n\nTemperature scaling and the conformal quantile are fitted on the validation split "
        "of each run; every number here is on its test split. Threshold metrics use "
        f"{rows[0]['threshold']}.\n"
    )
    save("posthoc", {"rows": rows}, table + note, "Calibration and conformal coverage")
    print(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(sys.argv[1:]))
