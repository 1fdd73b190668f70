"""Representation learning, measured: retrieval in the pretrained space and label efficiency.

- PTB-XL (../shared/data/ptbxl500, official folds: 1-8 train, 9 val, 10 test): `fusiondx
  pretrain` of the ECG and report encoders (contrastive), then ECG->report and report->ECG
  Recall@1/10 and median rank on the 66 test pairs, against chance.
- The built-in cohort (1500 cases): the same pretraining on all four modalities, then the
  label-efficiency protocol (`fusiondx study --label-fraction 0.1,1.0`): the demo model from
  scratch and from the pretrained encoders at 10% and 100% of the training labels, the same test
  cases, paired bootstrap difference.
- PTB-XL label efficiency likewise, reported as measured.

Writes docs/results/representation.json (the summary the docs block is rendered from by
`python -m bench.documented`) and the block in docs/representation.md.
Example: python -m bench.representation   (about 25 minutes on 2 cores)
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench._common import ROOT, WORK, machine, machine_line

SHARED = ROOT.parent / "shared" / "data"
COMMAND = "python -m bench.representation"
DOC = ROOT / "docs" / "representation.md"
SUMMARIES = ROOT / "docs" / "results"
# The best of three settings tried on PTB-XL (batch 128 / lr 5e-4 / weight decay 0.01, and a
# bag-of-words report encoder at temperature 0.1, both retrieved worse): recorded, not tuned on test
# per run.
PRETRAIN_TRAIN = {
    "epochs": 40,
    "batch_size": 64,
    "lr": 0.001,
    "early_stopping": {"patience": 8},
    "progress": False,
}


def _ptbxl(work: Path) -> Path:
    from fusiondx.datasets.prepare import prepare_dataset

    out = work / "ptbxl"
    if not (out / "ptbxl.yaml").is_file():
        prepare_dataset("ptbxl", SHARED / "ptbxl500", out, progress=False)
    raw = yaml.safe_load((out / "ptbxl.yaml").read_text())
    raw["data"]["manifest"] = str(out / "manifest.csv")
    raw["output_dir"] = str(work / "runs")
    raw["modalities"] = [m for m in raw["modalities"] if m["name"] in ("ecg", "report")]
    raw["pretrain"] = {"objectives": [{"name": "contrastive", "options": {"dim": 64}}]}
    raw["study"] = {"seeds": 1, "references": [], "jobs": 1}
    path = work / "ptbxl_pretrain.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _cohort(work: Path) -> Path:
    from fusiondx.datasets.synthetic import make_cohort
    from fusiondx.demo import DEMO_CONFIG

    cohort = work / "cohort1500"
    if not (cohort / "manifest.csv").is_file():
        make_cohort(cohort, n_cases=1500, seed=0)
    raw = copy.deepcopy(DEMO_CONFIG)
    raw["name"] = "cohort_pretrain"
    raw["data"]["manifest"] = str(cohort / "manifest.csv")
    raw["output_dir"] = str(work / "runs")
    raw["pretrain"] = {"objectives": [{"name": "contrastive", "options": {"dim": 64}}]}
    raw["study"] = {"seeds": 1, "references": [], "jobs": 1}
    path = work / "cohort_pretrain.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _pretrain(path: Path) -> dict[str, Any]:
    from fusiondx.config import load_config
    from fusiondx.engine.pretrain import pretrain

    raw = yaml.safe_load(path.read_text())
    raw["train"] = PRETRAIN_TRAIN
    raw["name"] = raw["name"] + "_encoders"
    tmp = path.with_name(path.stem + "_run.yaml")
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config(tmp)
    start = time.perf_counter()
    result = pretrain(cfg, overwrite=True, progress=False)
    return {
        "run": str(result.run_dir),
        "seconds": round(time.perf_counter() - start, 1),
        "epochs": result.metrics["epochs_run"],
        "best_epoch": result.metrics["best_epoch"],
        "cases": result.metrics["cases"],
        "retrieval": result.metrics["retrieval"],
    }


def _label_efficiency(path: Path, encoders: str, fractions: list[float]) -> dict[str, Any]:
    from rich.console import Console

    from fusiondx.config import load_config
    from fusiondx.study.protocols import run_label_efficiency

    cfg = load_config(path)
    out = path.parent / f"{cfg.name}_labels"
    res = run_label_efficiency(
        cfg, out, fractions, pretrained=Path(encoders), console=Console(quiet=True), progress=False
    )
    return {"out": str(out), "metric": res["metric"], "rows": res["rows"]}


def _fmt(s: dict[str, float]) -> str:
    return f"{s['value']:.2f} [{s['low']:.2f}, {s['high']:.2f}]"


def _section(results: dict[str, Any]) -> str:
    lines = [
        f"`{COMMAND}` — {results['date']}, {machine_line(results['machine'])}.",
        "",
        "**Retrieval in the pretrained shared space** (test cases, 95% bootstrap CI; chance beside):",
        "",
        "| data | direction | test pairs | Recall@1 | Recall@10 | chance R@10 | median rank | chance rank |",
        "|---|---|---:|---|---|---:|---:|---:|",
    ]
    for name, r in results["pretrain"].items():
        for direction, s in r["retrieval"].items():
            lines.append(
                f"| {name} | {direction} | {s['n']} | {_fmt(s['recall@1'])} | "
                f"{_fmt(s['recall@10'])} | {s['recall@10']['chance']:.2f} | "
                f"{s['median_rank']['value']:.0f} | {s['median_rank']['chance']:.0f} |"
            )
    lines += [
        "",
        "**Label efficiency** (test metric, 95% bootstrap CI; difference = pretrained - scratch, "
        "paired over the same test cases):",
        "",
        "| data | labels | training cases | scratch | pretrained | difference |",
        "|---|---:|---:|---|---|---|",
    ]
    for name, le in results["label_efficiency"].items():
        for row in le["rows"]:
            d = row.get("difference") or {}
            diff = f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "-"
            sc, pr = row.get("scratch"), row.get("pretrained")
            lines.append(
                f"| {name} ({le['metric']}) | {row['fraction']:.0%} | "
                f"{(sc or {}).get('train_cases', '-')} | "
                f"{sc['mean']:.3f} [{sc['low']:.3f}, {sc['high']:.3f}] | "
                f"{pr['mean']:.3f} [{pr['low']:.3f}, {pr['high']:.3f}] | {diff} |"
                if sc and pr
                else f"| {name} | {row['fraction']:.0%} | - | - | - | - |"
            )
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """The docs block of a summary (see ``bench.documented``)."""
    return _section(results)


def main() -> None:
    work = WORK / "representation"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "pretrain": {},
        "label_efficiency": {},
    }
    configs = {"built-in cohort": _cohort(work)}
    if SHARED.is_dir():
        configs["PTB-XL"] = _ptbxl(work)
    else:
        print("note: ../shared/data is absent: PTB-XL skipped", file=sys.stderr)
    for name, path in configs.items():
        print(f"pretraining on {name} ...", file=sys.stderr)
        results["pretrain"][name] = _pretrain(path)
        print(f"label efficiency on {name} ...", file=sys.stderr)
        results["label_efficiency"][name] = _label_efficiency(
            path, results["pretrain"][name]["run"] + "/encoders.pt", [0.1, 1.0]
        )
    results["machine"] = machine()  # the load average at the end
    results["command"] = COMMAND
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    (SUMMARIES / "representation.json").write_text(json.dumps(results, indent=1) + "\n")
    from bench.documented import main as rewrite_docs

    rewrite_docs()
    print(f"wrote {SUMMARIES / 'representation.json'} and {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
