"""Small data on purpose: the same studies with `train.small_data: off` and `auto` (the default).

On small cohorts (fewer than 400 training cases) a run changes the settings a config leaves at
their defaults (fusiondx/engine/small_data.py). This measures whether that helps: each small
dataset is studied twice, identical but for the setting (folds or seeds as given, the same
splits, strategies concat and late_average), and the fusion chosen on validation, the best single
modality and every neural entry are compared; the difference of the chosen fusions is a paired
bootstrap over the same test cases.

Example: python -m bench.small_data   (about 40 minutes on 2 cores; `python -m bench.results
--only small_data` also rewrites the docs)
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import ROOT, WORK, machine, machine_line

SHARED = ROOT.parent / "shared" / "data"
COMMAND = "python -m bench.small_data"


def datasets(work: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """(title, config, study overrides) of every small dataset available here."""
    from fusiondx.datasets.synthetic import make_cohort
    from fusiondx.demo import DEMO_CONFIG

    out = []
    for n in (120, 250):
        cohort = work / f"cohort{n}"
        if not (cohort / "manifest.csv").is_file():
            make_cohort(cohort, n_cases=n, seed=3)
        raw = copy.deepcopy(DEMO_CONFIG)
        raw["name"] = f"cohort{n}"
        raw["data"]["manifest"] = str(cohort / "manifest.csv")
        raw["data"]["metadata_columns"] = ["site"]
        raw["train"] = {"progress": False}  # everything else at its default
        raw["fusion"] = {"name": "concat"}
        for m in raw["modalities"]:
            m.pop(
                "encoder", None
            )  # default encoders and tokenizers, as a new user's config would have
            m.get("preprocessing", {}).pop("tokenizer", None)
        path = work / f"cohort{n}.yaml"
        path.write_text(json.dumps(raw))
        out.append((f"built-in cohort, {n} cases", path, {"folds": 5}))
    if SHARED.is_dir():
        from fusiondx.datasets.prepare import prepare_dataset

        mimic = prepare_dataset(
            "mimic_iv", SHARED / "mimic_iv_demo", work / "mimic", progress=False
        )
        out.append(("MIMIC-IV demo (275 admissions)", mimic.config, {"folds": 5}))
        ptbxl = prepare_dataset(
            "ptbxl", SHARED / "ptbxl500", work / "ptbxl", progress=False, report=False
        )
        out.append(("PTB-XL 500, ECG + metadata", ptbxl.config, {"seeds": 3}))
    return out


def study(config: Path, mode: str, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from rich.console import Console

    from fusiondx.config import load_config
    from fusiondx.study.study import run_study

    cfg = load_config(config)
    cfg = cfg.model_copy(
        update={
            "train": cfg.train.model_copy(update={"small_data": mode}),
            "study": cfg.study.model_copy(
                update={
                    "strategies": ["concat", "late_average"],
                    "ablation": False,
                    "robustness": False,
                    "jobs": 2,
                }
            ),
        }
    )
    t = time.perf_counter()
    res = run_study(cfg, out, console=Console(stderr=True), progress=False, **overrides).results
    res["minutes"] = (time.perf_counter() - t) / 60
    return res


def _pooled(results: dict[str, Any], eid: str) -> tuple[Any, list[np.ndarray], Any]:
    """Targets, per-replicate probabilities (folds pooled) and task of an entry's test predictions."""
    import pandas as pd

    from fusiondx.study.analysis import task_info
    from fusiondx.tasks import task_type

    e = next(x for x in results["entries"] if x["id"] == eid)
    dirs = [Path(r["run_dir"]) for r in e["runs"]]
    info = task_info(dirs[0], results["study"]["task"])
    frames = [
        pd.read_csv(d / "predictions.csv", dtype={"case_id": str})
        .query("split == 'test'")
        .set_index("case_id")
        for d in dirs
    ]
    if results["study"].get("folds"):
        frames = [pd.concat(frames)]
    order = np.sort(frames[0].index.to_numpy())
    frames = [f.loc[order] for f in frames]
    tt = task_type(info)
    return tt.frame_truth(info, frames[0]), [tt.frame_probs(info, f) for f in frames], info


def compare(off: dict[str, Any], auto: dict[str, Any]) -> dict[str, Any]:
    """Chosen fusion with small-data settings minus with defaults, paired over the test cases."""
    from fusiondx.evaluation.bootstrap import paired_difference
    from fusiondx.evaluation.classification import scorer, strata

    metric = off["study"]["primary_metric"]
    y, pa, info = _pooled(auto, auto["winner"])
    y2, pb, _ = _pooled(off, off["winner"])
    assert np.array_equal(y, y2), "the two studies must score the same test cases"
    return paired_difference(
        [scorer(metric, y, p, info.type) for p in pa],
        [scorer(metric, y, p, info.type) for p in pb],
        len(y),
        strata(y, info.type),
        n_boot=1000,
        seed=0,
    )


def row(title: str, mode: str, res: dict[str, Any]) -> dict[str, Any]:
    metric = res["study"]["primary_metric"]
    by = {e["id"]: e for e in res["entries"]}

    def ci(eid: str | None) -> dict[str, Any] | None:
        if eid is None:
            return None
        e = by[eid]
        return {"label": e["label"], **{k: e["test"][metric][k] for k in ("mean", "low", "high")}}

    neural = [
        e["test"][metric]["mean"] for e in res["entries"] if e["kind"] in ("single", "fusion")
    ]
    small = None
    for e in res["entries"]:
        for r in e["runs"]:
            m = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
            small = small or m.get("small_data")
    return {
        "data": title,
        "mode": mode,
        "metric": metric,
        "winner": ci(res["winner"]),
        "best_single": ci(res["best_single"]),
        "best_reference": ci(res.get("best_reference")),
        "neural_mean": float(np.nanmean(neural)),
        "minutes": round(res["minutes"], 1),
        "changed": (small or {}).get("changed"),
    }


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    rows, diffs = [], []
    for title, config, overrides in datasets(work):
        name = Path(config).stem
        off = study(config, "off", work / f"{name}_off", overrides)
        auto = study(config, "auto", work / f"{name}_auto", overrides)
        rows += [row(title, "off", off), row(title, "auto", auto)]
        d = compare(off, auto)
        diffs.append({"data": title, **{k: d[k] for k in ("difference", "low", "high", "p_value")}})
    summary = {
        "name": "small_data",
        "command": COMMAND,
        "machine": machine_line(machine()),
        "created": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "differences": diffs,
    }
    from bench.documented import SUMMARIES

    SUMMARIES.mkdir(parents=True, exist_ok=True)
    (SUMMARIES / "small_data.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    return summary


def render(s: dict[str, Any]) -> str:
    def ci(d: dict[str, Any] | None) -> str:
        return "–" if not d else f"{d['label']}: {d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    lines = [
        f"`{s['command']}` — {s['created']}, {s['machine']}.",
        "",
        "| data | small_data | fusion chosen on val | best single (val) | mean of the neural entries "
        "| best reference (val) | minutes |",
        "|---|---|---|---|---:|---|---:|",
    ]
    for r in s["rows"]:
        lines.append(
            f"| {r['data']} | {r['mode']} | {ci(r['winner'])} | {ci(r['best_single'])} | "
            f"{r['neural_mean']:.3f} | {ci(r['best_reference'])} | {r['minutes']:.0f} |"
        )
    lines += [
        "",
        "Chosen fusion with the small-data settings minus with the defaults (paired bootstrap over "
        "the same test cases):",
        "",
    ]
    lines += [
        f"- {d['data']}: {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        for d in s["differences"]
    ]
    changed = next((r["changed"] for r in s["rows"] if r["changed"]), None)
    if changed:
        lines += [
            "",
            "What `auto` changed: " + ", ".join(f"`{k}` → {v}" for k, v in changed.items()) + ".",
        ]
    return "\n".join(lines)


def main() -> int:
    summary = run(WORK / "results" / "small_data")
    print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
