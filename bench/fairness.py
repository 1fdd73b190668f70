"""Fairness by subgroup and shift across sites, measured.

- The built-in cohort with a planted site shift (900 cases at 32 x 32, ``site_shift=2``: site_A
  as generated, site_B at strength 1, site_C at 2; scanner contrast, ECG gain, report wording):
  leave-one-site-out beside the pooled split (`fusiondx study --site-column site`) for the
  demo's concat model over the acquired modalities (image, ECG, report; the labs carry no
  acquisition shift and would hide it), one seed. The planted shift must show as a drop for the
  most shifted held-out site, and as a higher drift score.
- PTB-XL (../shared/data/ptbxl500): normal vs abnormal ECG (NORM statement) from the ECG and
  the metadata (no report: it states the diagnosis), a patient-grouped 60/15/25 split (the
  official fold 10 holds 50 records, too few to cut by subgroup); the test table by sex and
  age band (<40, 40-64, >=65) from `fusiondx evaluate`.
- NIH ChestX-ray14 (../shared/data/nih1000_cxr): normal vs abnormal from the image and the
  metadata, the adapter's split; the test table by sex and view (PA/AP).

The real-data parts are skipped cleanly without ../shared/data. Writes
docs/results/fairness.json (with the command). About 10 minutes on 2 cores.
Example: python -m bench.fairness
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench._common import ROOT, WORK, machine

SHARED = ROOT.parent / "shared" / "data"
COMMAND = "python -m bench.fairness"
SUMMARIES = ROOT / "docs" / "results"
SITE_SHIFT = 2.0
COHORT_CASES = 900
TRAIN = {"epochs": 10, "early_stopping": {"monitor": "auroc", "patience": 3}, "progress": False}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _sites(work: Path) -> dict[str, Any]:
    from fusiondx.config import load_config
    from fusiondx.datasets.synthetic import make_cohort
    from fusiondx.demo import DEMO_CONFIG
    from fusiondx.study.sites import run_leave_one_site_out

    cohort = work / f"cohort_shift{SITE_SHIFT:g}"
    if not (cohort / "manifest.csv").is_file():
        make_cohort(cohort, n_cases=COHORT_CASES, seed=0, image_size=32, site_shift=SITE_SHIFT)
    raw = copy.deepcopy(DEMO_CONFIG)
    raw |= {"name": "sites", "output_dir": str(work / "runs")}
    raw["data"]["manifest"] = str(cohort / "manifest.csv")
    raw["modalities"] = [m for m in raw["modalities"] if m["name"] != "labs"]
    raw["train"] |= TRAIN
    raw["study"] = {"seeds": 1, "n_boot": 1000, "jobs": 1, "references": []}
    t = time.perf_counter()
    r = run_leave_one_site_out(load_config(raw), work / "sites", "site")
    rows = [e for e in r["entries"] if e.get("site")]
    pooled = next(e for e in r["entries"] if not e.get("site"))
    return {
        "site_shift": SITE_SHIFT,
        "cases": COHORT_CASES,
        "metric": r["metric"],
        "pooled": {k: pooled["pooled"][k] for k in ("mean", "low", "high")},
        "sites": [
            {
                k: e.get(k)
                for k in (
                    "site",
                    "n_test",
                    "held_out",
                    "n_pooled_site",
                    "pooled_site",
                    "drop",
                    "drop_vs_pooled_overall",
                    "drift_auroc",
                )
            }
            for e in rows
        ],
        "drift": r["drift"],
        "minutes": round((time.perf_counter() - t) / 60, 1),
        "report": str(work / "sites" / "report.html"),
    }


def _fit_evaluate(raw: dict[str, Any]) -> dict[str, Any]:
    from fusiondx.config import load_config
    from fusiondx.engine.run import evaluate, fit

    t = time.perf_counter()
    cfg = load_config(raw)
    fit(cfg, overwrite=True, progress=False)
    ev = evaluate(cfg.run_dir, progress=False).metrics
    task = cfg.tasks[0].name
    return {
        "task": task,
        "test_cases": ev["cases"],
        "test_auroc": ev["metrics"][task].get("auroc"),
        "fairness": ev["fairness"][task],
        "minutes": round((time.perf_counter() - t) / 60, 1),
    }


def _ptbxl(work: Path) -> dict[str, Any]:
    raw = ptbxl_binary(work)
    raw["fairness"] = {
        "columns": ["sex", "age_band"],
        "min_size": 30,
        "bands": {"age_band": {"column": "age", "edges": [40, 65]}},
    }
    return _fit_evaluate(raw)


def ptbxl_binary(work: Path) -> dict[str, Any]:
    """The PTB-XL 500 config (ECG + metadata) for normal vs abnormal ECG (the NORM statement),
    a single-label task; the manifest is prepared under ``work / "ptbxl"`` once."""
    from fusiondx.datasets.prepare import prepare_dataset

    out = work / "ptbxl"
    if not (out / "ptbxl.yaml").is_file():
        prepare_dataset("ptbxl", SHARED / "ptbxl500", out, report=False, progress=False)
    df = pd.read_csv(out / "manifest.csv", dtype=str)
    df["ecg_status"] = df["NORM"].map({"1": "normal", "0": "abnormal"})
    df.to_csv(out / "manifest_binary.csv", index=False)
    raw = yaml.safe_load((out / "ptbxl.yaml").read_text())
    raw |= {"name": "ptbxl_fairness", "output_dir": str(work / "runs")}
    raw["data"]["manifest"] = str(out / "manifest_binary.csv")
    raw["data"]["split"] = {"fractions": [0.6, 0.15, 0.25], "seed": 0}
    raw["tasks"] = [
        {"name": "ecg_status", "label": "ecg_status", "classes": ["normal", "abnormal"]}
    ]
    raw["train"] |= TRAIN
    return raw


def _nih(work: Path) -> dict[str, Any]:
    from fusiondx.datasets.prepare import prepare_dataset

    out = work / "nih_cxr"
    if not (out / "nih_cxr.yaml").is_file():
        prepare_dataset("nih_cxr", SHARED / "nih1000_cxr", out, progress=False)
    raw = yaml.safe_load((out / "nih_cxr.yaml").read_text())
    raw |= {"name": "nih_fairness", "output_dir": str(work / "runs")}
    raw["data"]["manifest"] = str(out / "manifest.csv")
    raw["train"] |= TRAIN
    raw["fairness"] = {"columns": ["sex", "view"], "min_size": 30}
    return _fit_evaluate(raw)


def main() -> None:
    import torch

    torch.set_num_threads(2)
    work = WORK / "fairness"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "command": COMMAND}
    _say("leave one site out on the built-in cohort with a planted site shift ...")
    results["sites"] = _sites(work)
    for name, folder, run in (("ptbxl", "ptbxl500", _ptbxl), ("nih_cxr", "nih1000_cxr", _nih)):
        if not (SHARED / folder).is_dir():
            _say(f"note: {SHARED / folder} is absent: {name} skipped")
            results[name] = {"skipped": f"{SHARED / folder} absent"}
            continue
        _say(f"fairness table on {name} ...")
        results[name] = run(work)
    results["machine"] = machine()
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    path = SUMMARIES / "fairness.json"
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    _say(_summary(results))
    _say(f"wrote {path}")


def _summary(r: dict[str, Any]) -> str:
    s = r["sites"]
    lines = [
        f"Leave one site out (site_shift {s['site_shift']}), pooled {s['metric']} {s['pooled']['mean']:.3f}:"
    ]
    for e in s["sites"]:
        d = e.get("drop") or {}
        lines.append(
            f"  {e['site']}: held out {e['held_out']['mean']:.3f} [{e['held_out']['low']:.3f}, "
            f"{e['held_out']['high']:.3f}], drop vs its pooled test cases "
            f"{d.get('difference', float('nan')):+.3f}, vs pooled overall "
            f"{e.get('drop_vs_pooled_overall') or float('nan'):+.3f}, drift {e['drift_auroc']:.3f}"
        )
    from fusiondx.engine.fairness import fairness_text

    for name in ("ptbxl", "nih_cxr"):
        if "fairness" in r.get(name, {}):
            lines.append(f"{name}: test AUROC {r[name]['test_auroc']:.3f}")
            lines += fairness_text(r[name]["fairness"])
    return "\n".join(lines)


if __name__ == "__main__":
    main()
