"""`make real-study`: the fusion study on the real public subsets in ../shared/data.

Prepares PTB-XL (with and without the report text, which the labels were derived from) and NIH
ChestX-ray14 with `fusiondx prepare`, runs `fusiondx study` on each with the config the adapter
wrote (3 seeds), and rewrites the generated part of the "Study results" section of
docs/real-data.md: each study's table, the winner against the best single modality, and where
the full report is. Without ../shared/data it says so and exits cleanly.

Example: python -m bench.real_study --only ptbxl
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from typing import Any

from bench._common import ROOT, WORK, machine, machine_line

SHARED = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "real-data.md"
STUDIES = {  # name -> (adapter, shared folder, adapter options, what it asks)
    "ptbxl": ("ptbxl", "ptbxl500", {}, "PTB-XL: ECG vs metadata vs report text vs their fusions"),
    "ptbxl_no_report": ("ptbxl", "ptbxl500", {"report": False},
                        "PTB-XL without the report (the labels were derived from it): ECG vs metadata vs fusion"),
    "nih_cxr": ("nih_cxr", "nih1000_cxr", {}, "NIH ChestX-ray14: image vs demographics vs fusion"),
}


def run_one(name: str, seeds: int) -> dict[str, Any]:
    from rich.console import Console

    from fusiondx.config import load_config
    from fusiondx.datasets.prepare import prepare_dataset
    from fusiondx.study.study import run_study

    adapter, folder, options, title = STUDIES[name]
    out = WORK / "real" / name
    prepared = prepare_dataset(adapter, SHARED / folder, out, **options)
    config = prepared.config
    cfg = load_config(config)
    t = time.perf_counter()
    result = run_study(cfg, out / "study", seeds=seeds, console=Console(stderr=True))
    return {"name": name, "title": title, "config": config, "folder": out / "study",
            "results": result.results, "minutes": (time.perf_counter() - t) / 60,
            "command": f"fusiondx prepare {adapter} ../shared/data/{folder} --out <dir>"
                       + ("".join(f" --no-{k}" for k, v in options.items() if v is False))
                       + f" && fusiondx study <dir>/{config.name} --seeds {seeds}"}


def section(r: dict[str, Any]) -> str:
    res = r["results"]
    c, metric = res["comparison"], res["study"]["primary_metric"]
    entries = {e["id"]: e for e in res["entries"]}
    label = {k: entries[k].get("label", k) for k in entries}
    verdict = ("fusion helps" if c["low"] > 0 else "fusion does not clearly help" if c["high"] >= 0
               else "the best single modality is better")
    table = (r["folder"] / "table.md").read_text().strip()
    return (f"### {r['title']}\n\n`{r['command']}` ({r['minutes']:.0f} min)\n\n{table}\n\n"
            f"Winner on validation {metric}: **{label.get(res['winner'], res['winner'])}**; against "
            f"the best single modality ({label.get(res['best_single'], res['best_single'])}) the test "
            f"difference is {c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] "
            f"({c['method']}): {verdict}. Full report: `{os.path.relpath(r['folder'] / 'report.html', ROOT)}`.\n")


def write_doc(parts: list[str]) -> None:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = (f"<!-- real-study:begin (written by `make real-study`) -->\n"
            f"Generated {stamp} on {machine_line(machine())}.\n\n" + "\n".join(parts)
            + "<!-- real-study:end -->")
    text = DOC.read_text()
    pattern = re.compile(r"<!-- real-study:begin.*?<!-- real-study:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text)
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    DOC.write_text(text)
    print(f"Wrote the study results into {DOC}; reports under {WORK / 'real'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.real_study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=list(STUDIES), action="append", help="run only these studies")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        print(f"No real data at {SHARED}; nothing to do (the real-data study needs ../shared/data).")
        return 0
    names = args.only or list(STUDIES)
    parts = [section(run_one(n, args.seeds)) for n in names]
    write_doc(parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
