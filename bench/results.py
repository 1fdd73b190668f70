"""`make results`: rerun every study whose numbers the README and docs show, then rewrite them.

Each documented result is the study (or measurement) below, run exactly as its command says,
summarised into ``docs/results/<name>.json`` (committed) and rendered into the docs' generated
blocks by ``bench.documented``. Run it on a quiet machine: the tables carry training times. The
real-data studies need ``../shared/data`` and are skipped without it (their committed summaries
stay). About 3 hours on 2 cores in all; ``--only`` runs a part.

Example: python -m bench.results --only demo,cohort_null
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import ROOT, WORK, machine, machine_line
from bench.documented import SUMMARIES, summarise

SHARED = ROOT.parent / "shared" / "data"
OUT = WORK / "results"
COHORT_CASES = 1500


@dataclass
class Documented:
    command: str
    run: Callable[[Path], tuple[dict[str, Any], float]]  # work folder -> (results.json, minutes)
    needs_shared: bool = False


def _study(config: Path, out: Path, **overrides: Any) -> tuple[dict[str, Any], float]:
    from rich.console import Console

    from fusiondx.config import load_config
    from fusiondx.study.study import run_study

    t = time.perf_counter()
    result = run_study(load_config(config), out, console=Console(stderr=True), **overrides)
    return result.results, (time.perf_counter() - t) / 60


def _cohort(name: str, **variant: Any) -> Path:
    """The 1,500-case built-in cohort (or a variant) where the example configs expect it."""
    from fusiondx.datasets.synthetic import make_cohort

    out = ROOT / "demo_out" / name
    marker, want = out / ".variant", json.dumps(variant, sort_keys=True, default=list)
    if not (out / "manifest.csv").is_file() or not marker.is_file() or marker.read_text() != want:
        make_cohort(out, n_cases=COHORT_CASES, seed=0, progress=sys.stderr.isatty(), **variant)
        marker.write_text(want)
    return out / "manifest.csv"


def _demo(work: Path) -> tuple[dict[str, Any], float]:
    from rich.console import Console

    from fusiondx.demo import STRATEGIES, run_demo

    t = time.perf_counter()
    res = run_demo(
        work,
        cases=COHORT_CASES,
        epochs=20,
        seeds=3,
        strategies=STRATEGIES,
        jobs=2,
        console=Console(stderr=True),
    )
    return res.results, (time.perf_counter() - t) / 60


def _example(
    name: str, cohort: str = "cohort", **variant: Any
) -> Callable[[Path], tuple[dict[str, Any], float]]:
    def run(work: Path) -> tuple[dict[str, Any], float]:
        _cohort(cohort, **variant)
        return _study(ROOT / "examples" / f"{name}.yaml", work / "study")

    return run


def _real(
    adapter: str, folder: str, options: dict[str, Any] | None = None, **study: Any
) -> Callable[[Path], tuple[dict[str, Any], float]]:
    def run(work: Path) -> tuple[dict[str, Any], float]:
        from fusiondx.datasets.prepare import prepare_dataset

        prepared = prepare_dataset(
            adapter, SHARED / folder, work / "prepared", progress=False, **(options or {})
        )
        return _study(prepared.config, work / "study", **study)

    return run


def _real_command(adapter: str, folder: str, flags: str = "", study: str = "") -> str:
    return (
        f"fusiondx prepare {adapter} ../shared/data/{folder} --out <dir>{flags} && "
        f"fusiondx study <dir>/{adapter}.yaml{study}"
    )


EXAMPLE = "fusiondx cohort demo_out/{c} --cases 1500{v} && fusiondx study examples/{n}.yaml"
STUDIES: dict[str, Documented] = {
    "demo": Documented("fusiondx demo", _demo),
    "cohort_null": Documented(
        EXAMPLE.format(c="null", v=" --uninformative ecg,report,labs", n="cohort_null"),
        _example("cohort_null", "null", uninformative=("ecg", "report", "labs")),
    ),
    "cohort_shortcut": Documented(
        EXAMPLE.format(
            c="shortcut",
            v=" --presence-shortcut 0.9 --uninformative ecg,report,labs",
            n="cohort_shortcut",
        ),
        _example(
            "cohort_shortcut",
            "shortcut",
            presence_shortcut=0.9,
            uninformative=("ecg", "report", "labs"),
        ),
    ),
    **{
        n: Documented(EXAMPLE.format(c="cohort", v="", n=n), _example(n))
        for n in ("localization", "generation", "segmentation", "survival")
    },
    "ptbxl": Documented(_real_command("ptbxl", "ptbxl500"), _real("ptbxl", "ptbxl500"), True),
    "ptbxl_no_report": Documented(
        _real_command("ptbxl", "ptbxl500", " --no-report"),
        _real("ptbxl", "ptbxl500", {"report": False}),
        True,
    ),
    "nih_cxr": Documented(
        _real_command("nih_cxr", "nih1000_cxr"), _real("nih_cxr", "nih1000_cxr"), True
    ),
    "mimic_iv": Documented(
        _real_command("mimic_iv", "mimic_iv_demo", study=" --folds 5"),
        _real("mimic_iv", "mimic_iv_demo", folds=5),
        True,
    ),
    "pneumoniamnist": Documented(
        _real_command("medmnist", "medmnist_pneumonia"),
        _real("medmnist", "medmnist_pneumonia"),
        True,
    ),
}


def run_oracle(work: Path) -> dict[str, Any]:
    """Oracle AUROCs (hand-made features, logistic regression, 5 grouped folds) of the cohort
    and its variants, and the presence-only AUROC of each."""
    from fusiondx.datasets.synthetic import oracle_aurocs, presence_auroc

    variants = {
        "default": {},
        "cohort_null": {"uninformative": ("ecg", "report", "labs")},
        "cohort_shortcut": {"presence_shortcut": 0.9, "uninformative": ("ecg", "report", "labs")},
    }
    import pandas as pd

    rows, subtypes = {}, {}
    for name, v in variants.items():
        manifest = _cohort(
            {"default": "cohort", "cohort_null": "null", "cohort_shortcut": "shortcut"}[name], **v
        )
        rows[name] = {
            **oracle_aurocs(manifest),
            "presence": presence_auroc(manifest),
            "variant": {k: list(x) if isinstance(x, tuple) else x for k, x in v.items()},
        }
    # Why fusion is needed on the default cohort: each modality sees some kinds of disease only.
    frame = pd.read_csv(_cohort("cohort"), dtype=str)
    for sub in ("pulmonary", "cardiac", "mixed"):
        part = _cohort("cohort").with_name(f"manifest_{sub}.csv")
        frame[frame["subtype"].isin(["none", sub])].to_csv(part, index=False)
        subtypes[sub] = oracle_aurocs(part)
        part.unlink()
    return {
        "name": "cohort_oracle",
        "command": "python -m bench.results --only cohort_oracle",
        "cases": COHORT_CASES,
        "rows": rows,
        "subtypes": subtypes,
    }


def render_oracle(s: dict[str, Any]) -> str:
    lines = [
        f"`{s['command']}` ({s['cases']} cases each, 5 folds grouped by patient):",
        "",
        "| cohort | image | ECG | report | labs | fused | presence only |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in s["rows"].values():
        flags = " ".join(
            f"--{k.replace('_', '-')} {','.join(v) if isinstance(v, list) else v}"
            for k, v in r["variant"].items()
        )
        label = f"`{flags}`" if flags else "default"
        lines.append(
            f"| {label} | {r['image']:.3f} | {r['ecg']:.3f} | {r['report']:.3f} | {r['labs']:.3f} | "
            f"**{r['fused']:.3f}** | {r['presence']:.3f} |"
        )
    for sub, r in (s.get("subtypes") or {}).items():
        lines.append(
            f"| default, healthy vs {sub} only | {r['image']:.3f} | {r['ecg']:.3f} | {r['report']:.3f} | "
            f"{r['labs']:.3f} | **{r['fused']:.3f}** | |"
        )
    return "\n".join(lines)


def run_catalog(work: Path) -> None:
    """The measured columns of docs/fusions.md: every strategy once on the built-in cohort."""
    from fusiondx.catalog import measurements_from_study, write

    _cohort("cohort")
    results, _ = _study(ROOT / "examples" / "fusion_catalog.yaml", work / "study")
    docs = ROOT / "docs"
    (docs / "fusion_measurements.json").write_text(
        json.dumps(measurements_from_study(results), indent=1) + "\n"
    )
    write(docs)


EXTRA = {"cohort_oracle": run_oracle, "catalog": run_catalog}


def run(name: str) -> None:
    work = OUT / name
    t = time.perf_counter()
    print(f"== {name}", flush=True)
    if name in EXTRA:
        out = EXTRA[name](work)
        if out is not None:
            (SUMMARIES / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    elif name == "small_data":
        from bench.small_data import run as small

        small(work)
    else:
        d = STUDIES[name]
        start = time.time()
        results, minutes = d.run(work)
        path = SUMMARIES / f"{name}.json"
        trained = [p for p in work.rglob("metrics.json") if p.stat().st_mtime >= start]
        if not trained and path.is_file():
            # Every training was reused (a rerun of the analysis): the time is the training run's.
            minutes = json.loads(path.read_text()).get("minutes", minutes)
        summary = summarise(
            results, name=name, command=d.command, minutes=minutes, machine=machine_line(machine())
        )
        SUMMARIES.mkdir(parents=True, exist_ok=True)
        (SUMMARIES / f"{name}.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(f"== {name}: {(time.perf_counter() - t) / 60:.1f} min", flush=True)


ALL = [*STUDIES, "small_data", "cohort_oracle", "catalog"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", help=f"comma-separated, from: {', '.join(ALL)}")
    p.add_argument(
        "--render", action="store_true", help="only rewrite the docs from the committed summaries"
    )
    args = p.parse_args(argv)
    from bench import documented

    if not args.render:
        names = [n.strip() for n in args.only.split(",")] if args.only else ALL
        unknown = [n for n in names if n not in ALL]
        if unknown:
            p.error(f"unknown: {', '.join(unknown)}; choose from {', '.join(ALL)}")
        for name in names:
            if name in STUDIES and STUDIES[name].needs_shared and not SHARED.is_dir():
                print(f"== {name}: skipped, no real data at {SHARED} (the committed summary stays)")
                continue
            run(name)
    return documented.main()


if __name__ == "__main__":
    sys.exit(main())
