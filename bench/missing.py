"""Training with modalities missing: the strategies built for it against concat and late_average.

The built-in cohort (1500 cases, the demo model), every strategy trained with 0%, 30% and 60% of
each modality removed from its training cases (`fusiondx study --train-missing 0,0.3,0.6`), each
model then tested with 0-100% of each modality removed. The robustness score is the mean test
AUROC over every removed modality and rate; the protocol's report names the most robust.

Writes docs/results/missing_training.json (rendered into docs/representation.md by
`python -m bench.documented`).
Example: python -m bench.missing   (about 30 minutes on 2 cores)
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

COMMAND = "python -m bench.missing"
SUMMARIES = ROOT / "docs" / "results"
STRATEGIES = [
    "concat",
    "late_average",
    "shared_space",
    "autoencoder",
    "mvae",
    "mopoe",
    "shaspec",
    "medfuse",
    "drfuse",
    "m3care",
    "healnet",
    "flex_moe",
]
SHARES = [0.0, 0.3, 0.6]


def _config(work: Path) -> Path:
    from fusiondx.datasets.synthetic import make_cohort
    from fusiondx.demo import DEMO_CONFIG

    cohort = work / "cohort1500"
    if not (cohort / "manifest.csv").is_file():
        make_cohort(cohort, n_cases=1500, seed=0)
    raw = copy.deepcopy(DEMO_CONFIG)
    raw["name"] = "missing_training"
    raw["data"]["manifest"] = str(cohort / "manifest.csv")
    raw["output_dir"] = str(work / "runs")
    raw["study"] = {"seeds": 1, "references": [], "jobs": 2}
    path = work / "missing_training.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    """What the docs show of the protocol's results.json."""
    return {
        "metric": res["metric"],
        "test_rates": res["test_rates"],
        "most_robust": res["most_robust"],
        "failed": sorted(res["failed"]),
        "entries": [
            {
                "strategy": e["strategy"],
                "train_missing": e["train_missing"],
                "test": {k: e["test"][k] for k in ("mean", "low", "high")},
                "removed": e["removed"],
                "robustness": e["robustness"],
                "worst": e["worst"],
            }
            for e in res["entries"]
        ],
    }


def render(results: dict[str, Any]) -> str:
    """The docs block of a summary (see ``bench.documented``)."""
    shares = sorted({e["train_missing"] for e in results["entries"]})
    by = {(e["strategy"], e["train_missing"]): e for e in results["entries"]}
    strategies = list(dict.fromkeys(e["strategy"] for e in results["entries"]))
    rates = ", ".join(f"{r:.0%}" for r in results["test_rates"])
    best = results["most_robust"]
    lines = [
        f"`{results['command']}` — {results['date']}, {machine_line(results['machine'])}.",
        "",
        f"Built-in cohort (1500 cases), the demo model, 1 seed. **Robustness** = mean test "
        f"{results['metric'].upper()} over every modality removed from {rates} of the test "
        "cases; **complete** = all modalities present (95% bootstrap CI); **worst** = the "
        "lowest score with one modality removed from every test case. Columns: share of each "
        "modality removed in training.",
        "",
        "| strategy | "
        + " | ".join(f"complete ({s:.0%})" for s in shares)
        + " | "
        + " | ".join(f"robustness ({s:.0%})" for s in shares)
        + " | "
        + " | ".join(f"worst ({s:.0%})" for s in shares)
        + " |",
        "|---|" + "---|" * len(shares) + "---:|" * (2 * len(shares)),
    ]
    for s in sorted(strategies, key=lambda s: -max(by[s, x]["robustness"] for x in shares)):
        cells = []
        for x in shares:
            t = by[s, x]["test"]
            cells.append(f"{t['mean']:.3f} [{t['low']:.3f}, {t['high']:.3f}]")
        cells += [f"{by[s, x]['robustness']:.3f}" for x in shares]
        cells += [f"{by[s, x]['worst']:.3f}" for x in shares]
        lines.append(f"| `{s}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Most robust: **`{best['strategy']}` trained with {best['train_missing']:.0%} "
        f"missing** (robustness {best['robustness']:.3f}).",
    ]
    if results["failed"]:
        lines.append(f"Failed trainings: {', '.join(results['failed'])}.")
    return "\n".join(lines)


def main() -> None:
    from rich.console import Console

    from fusiondx.config import load_config
    from fusiondx.study.protocols import run_missing_training

    work = WORK / "missing"
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_config(_config(work))
    start = time.perf_counter()
    res = run_missing_training(
        cfg, work / "study", SHARES, strategies=STRATEGIES, console=Console(stderr=True)
    )
    summary = summarise(res) | {
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "machine": machine(),
        "command": COMMAND,
    }
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    out = SUMMARIES / "missing_training.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    from bench.documented import main as rewrite_docs

    rewrite_docs()
    print(f"wrote {out}, the block in docs/representation.md, {work / 'study'}", file=sys.stderr)


if __name__ == "__main__":
    main()
