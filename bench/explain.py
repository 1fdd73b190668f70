"""Explanations that point at the truth, on the built-in cohort (its generator knows the lesion
and which modality carries the signal).

- Pointing game: for every diseased test case with a lesion, is the maximum of Grad-CAM (of the
  fused model's P(disease), on the image) inside the true lesion box, strictly and within the
  usual tolerance (15 px at 224 px)? Against a random point. Measured on the default cohort, on
  a variant where only the image is informative, and for an image-only model whose task is the
  lesion itself (``lesion_finder``).
- Modality ranking: the Spearman correlation between each modality's importance on the test
  split and the generator's ranking (the per-modality oracle AUROCs of
  ``fusiondx.datasets.synthetic.oracle_aurocs``), on the default cohort and on variants where
  the informative modalities are changed (``uninformative=[...]``); also whether every
  informative modality outranks every uninformative one. Two importances: the mean |Shapley
  value| of P(disease), and the Shapley share of the test AUROC.

Writes docs/results/explain.json; a rerun with the same settings reuses the cohorts and runs
(in $FUSIONDX_BENCH_WORK/explain). Example: python -m bench.explain   (about 15 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import ROOT, WORK, machine, machine_line

COMMAND = "python -m bench.explain"
OUT = ROOT / "docs" / "results" / "explain.json"
ORACLE_NAME = {"cxr": "image", "ecg": "ecg", "report": "report", "labs": "labs"}
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "image_only": ["ecg", "report", "labs"],
    "ecg_and_report": ["image", "labs"],
    "lesion_finder": ["ecg", "report", "labs"],
}
SIZE = 64
CONFIG: dict[str, Any] = {
    "seed": 0,
    "data": {"manifest": "manifest.csv", "patient_column": "patient_id"},
    "modalities": [
        {
            "name": "cxr",
            "kind": "image",
            "column": "image",
            "preprocessing": {"size": [SIZE, SIZE]},
            # Three stages: an 8x8 last feature map at 64 px, fine enough to point at a lesion.
            "encoder": {"name": "cnn", "options": {"widths": [16, 32, 64]}},
        },
        {
            "name": "ecg",
            "kind": "signal",
            "column": "ecg",
            "preprocessing": {"rate": 50, "length": 500},
        },
        {
            "name": "report",
            "kind": "text",
            "column": "report",
            "preprocessing": {"vocab_size": 400, "max_length": 48},
        },
        {
            "name": "labs",
            "kind": "tabular",
            "columns": ["age", "sex", "crp", "troponin", "bnp", "wbc", "spo2", "smoker"],
            "categorical": ["sex", "smoker"],
        },
    ],
    "fusion": {"name": "concat", "dim": 64},
    "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
    "train": {
        "epochs": 15,
        "batch_size": 32,
        "progress": False,
        "early_stopping": {"monitor": "auroc", "patience": 4},
        "small_data": "off",
    },
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1000, help="cases per cohort (default 1000)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs at most (default 15)")


LESION_VARIANT = "lesion_finder"
"""An image-only model whose task is the lesion itself (opacity or nodule present, from the
cohort's findings): the pointing game of a model that must look at the lesion to succeed. On
the disease label the image's strongest cue is the heart's size (cardiomegaly), not a lesion."""
TOLERANCE = 15 / 224
"""The pointing game's tolerance (Zhang et al., 2018: 15 pixels at 224), as a share of the side."""


def _lesion_manifest(manifest: Path) -> Path:
    import pandas as pd

    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    df["lesion"] = np.where(df["findings"].str.contains("opacity|nodule"), "yes", "no")
    out = manifest.with_name("manifest_lesion.csv")
    df.to_csv(out, index=False)
    return out


def _train(
    name: str, uninformative: list[str], cases: int, epochs: int, work: Path
) -> dict[str, Any]:
    from fusiondx.config import Config
    from fusiondx.datasets.synthetic import make_cohort, oracle_aurocs
    from fusiondx.engine.run import fit

    folder = work / name
    cfg = copy.deepcopy(CONFIG)
    cfg["name"] = name
    cfg["data"]["manifest"] = str(folder / "cohort" / "manifest.csv")
    cfg["output_dir"] = str(folder / "runs")
    cfg["train"]["epochs"] = epochs
    lesion = name == LESION_VARIANT
    if lesion:
        cfg["data"]["manifest"] = str(folder / "cohort" / "manifest_lesion.csv")
        cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] == "cxr"]
        cfg["tasks"] = [{"name": "diagnosis", "label": "lesion", "classes": ["no", "yes"]}]
    stamp = folder / "settings.json"
    settings = {"cases": cases, "uninformative": uninformative, "config": cfg}
    run = folder / "runs" / name
    if not (
        stamp.is_file()
        and json.loads(stamp.read_text()) == settings
        and (run / "metrics.json").is_file()
    ):
        # A rerun with the same settings reuses the cohort and the trained run.
        made = make_cohort(
            folder / "cohort", n_cases=cases, seed=1, image_size=SIZE, uninformative=uninformative
        )
        if lesion:
            _lesion_manifest(made)
        run = fit(Config.model_validate(cfg), overwrite=True, progress=False).run_dir
        stamp.write_text(json.dumps(settings))
    manifest = Path(cfg["data"]["manifest"])
    return {
        "run_dir": run,
        "manifest": manifest,
        "oracle": oracle_aurocs(folder / "cohort" / "manifest.csv"),
    }


def _pointing(run_dir: Path, manifest: Path, label: str, positive: str) -> dict[str, Any]:
    """Grad-CAM maximum inside the lesion box (strictly, and within the pointing game's usual
    tolerance), for the positive test cases that have a lesion; against a random point."""
    import pandas as pd
    from PIL import Image

    from fusiondx.explanations._target import Target
    from fusiondx.explanations.image import image_attribution
    from fusiondx.study.explanations import load_test

    model, store, idx = load_test(run_dir)
    df = pd.read_csv(manifest, dtype=str).set_index("case_id")
    j = store.modalities.index("cxr")
    keep = [
        i
        for i in idx
        if store.mask[i, j]
        and df.loc[store.ids[i], label] == positive
        and isinstance(df.loc[store.ids[i], "lesion_box"], str)
    ]
    info = next(t for t in store_tasks(run_dir) if t.name == "diagnosis")
    hits, near, shares, near_shares = [], [], [], []
    for start in range(0, len(keep), 64):
        chunk = np.asarray(keep[start : start + 64])
        batch = store.batch(chunk)
        heat, _ = image_attribution(model, Target(info, 1), batch["inputs"], batch["mask"], "cxr")
        for k, i in enumerate(chunk):
            row = df.loc[store.ids[i]]
            w, h = Image.open(manifest.parent / row["image"]).size
            x0, y0, x1, y1 = (float(v) for v in row["lesion_box"].split())
            sy, sx = heat.shape[1] / h, heat.shape[2] / w
            r, c = np.unravel_index(int(np.argmax(heat[k])), heat[k].shape)
            y, x = (r + 0.5) / sy, (c + 0.5) / sx  # the maximum in image pixels
            hits.append(y0 <= y < y1 and x0 <= x < x1)
            tol = TOLERANCE * max(w, h)
            dy, dx = max(y0 - y, 0.0, y - y1), max(x0 - x, 0.0, x - x1)
            near.append(bool(np.hypot(dx, dy) <= tol))
            shares.append((x1 - x0) * (y1 - y0) / (w * h))
            # The random rate with tolerance: the share of the image within tol of the box.
            yy, xx = np.mgrid[0:h, 0:w] + 0.5
            ddy = np.maximum(np.maximum(y0 - yy, 0), yy - y1)
            ddx = np.maximum(np.maximum(x0 - xx, 0), xx - x1)
            near_shares.append(float((np.hypot(ddx, ddy) <= tol).mean()))
    return {
        "cases": len(hits),
        "hit_rate": float(np.mean(hits)) if hits else None,
        "random_rate": float(np.mean(shares)) if shares else None,
        "tolerance_px": TOLERANCE * SIZE,
        "hit_rate_tolerance": float(np.mean(near)) if near else None,
        "random_rate_tolerance": float(np.mean(near_shares)) if near_shares else None,
    }


def store_tasks(run_dir: Path) -> list[Any]:
    from fusiondx.tasks import TaskInfo

    state = json.loads((run_dir / "preprocessing.json").read_text())
    return [TaskInfo.from_dict(t) for t in state["tasks"]]


def _ranking(run_dir: Path, oracle: dict[str, float], uninformative: list[str]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    from fusiondx.explanations.importance import mean_abs_shapley, metric_shapley
    from fusiondx.study.explanations import load_test
    from fusiondx.tasks import task_type

    model, store, idx = load_test(run_dir)
    info = next(t for t in store_tasks(run_dir) if t.name == "diagnosis")
    head, y = model.task_head(info.name), store.targets[info.name][idx]

    def auroc(raw: Any) -> float:
        return float(task_type(info).score(info, head, raw, y, "auroc"))

    measures = {
        "mean_abs_shapley": mean_abs_shapley(model, info, store, idx)["mean_abs"],
        "auroc_share": metric_shapley(model, info, store, idx, auroc)["share"],
    }
    mods = list(measures["mean_abs_shapley"])
    informative = [m for m in mods if ORACLE_NAME[m] not in uninformative]
    other = [m for m in mods if m not in informative]
    truth = [oracle[ORACLE_NAME[m]] for m in mods]
    # The generator's design: a modality rendered from another case carries nothing, so those
    # tie at the bottom (their oracle AUROCs, ~0.5, differ by noise only).
    design = [oracle[ORACLE_NAME[m]] if m in informative else 0.5 for m in mods]
    out: dict[str, Any] = {
        "oracle_auroc": {m: oracle[ORACLE_NAME[m]] for m in mods},
        "informative": informative,
        "test_cases": len(idx),
    }
    for name, values in measures.items():
        ours = [values[m] for m in mods]
        out[name] = {
            "values": values,
            "spearman": float(spearmanr(ours, truth).statistic),
            "spearman_design": float(spearmanr(ours, design).statistic),
            "informative_outrank_the_rest": (
                min(values[m] for m in informative) > max(values[m] for m in other)
                if other
                else None
            ),
        }
    return out


def run(cases: int = 1000, epochs: int = 15, work: Path | None = None) -> dict[str, Any]:
    work = work or WORK / "explain"
    t0 = time.time()
    rows: dict[str, Any] = {}
    for name, uninf in VARIANTS.items():
        print(
            f"[explain] {name}: cohort of {cases} cases, uninformative {uninf or 'none'} ...",
            flush=True,
        )
        trained = _train(name, uninf, cases, epochs, work)
        metrics = json.loads((trained["run_dir"] / "metrics.json").read_text())
        lesion = name == LESION_VARIANT
        row: dict[str, Any] = {
            "uninformative": uninf,
            "task": "lesion (opacity or nodule) present" if lesion else "disease",
            "test_auroc": metrics["test"]["diagnosis"]["auroc"],
        }
        if not lesion:  # one modality: nothing to rank
            row["ranking"] = _ranking(trained["run_dir"], trained["oracle"], uninf)
        if "image" not in uninf:
            row["pointing"] = _pointing(
                trained["run_dir"],
                trained["manifest"],
                *(("lesion", "yes") if lesion else ("label", "disease")),
            )
        rows[name] = row
        print(f"[explain] {name}: {json.dumps(row, default=float)}", flush=True)
    args = [] if (cases, epochs) == (1000, 15) else ["--cases", str(cases), "--epochs", str(epochs)]
    out = {
        "name": "explain",
        "command": " ".join([COMMAND, *args]),
        "epochs": epochs,
        "machine": machine_line(machine()),
        "created": dt.date.today().isoformat(),
        "cases": cases,
        "seconds": round(time.time() - t0, 1),
        "rows": rows,
    }
    OUT.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"[explain] wrote {OUT} in {out['seconds']:.0f} s", flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    run(args.cases, args.epochs)
