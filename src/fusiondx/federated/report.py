"""The federated-vs-centralised-vs-each-site table: results.json, results.md, rounds.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from fusiondx.evaluation.bootstrap import pooled_ci
from fusiondx.federated.sites import Cohort
from fusiondx.study._results import json_clean
from fusiondx.tasks import TaskInfo, task_type


def _ci(frame: pd.DataFrame, info: TaskInfo, metric: str, n_boot: int) -> dict[str, Any]:
    """The metric on these test cases with its percentile bootstrap CI (the study's)."""
    tt = task_type(info)
    if len(frame) < 2:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": len(frame)}
    ci = pooled_ci(
        [tt.case_scores(info, frame)[metric]], len(frame), tt.strata(info, frame), n_boot=n_boot
    )
    return {"mean": ci["mean"], "low": ci["low"], "high": ci["high"], "n": len(frame)}


def _cell(c: dict[str, Any]) -> str:
    if not np.isfinite(c["mean"]):
        return "–"
    return f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"


def write_report(
    out: Path,
    *,
    cohort: Cohort,
    frames: dict[str, pd.DataFrame],
    info: TaskInfo,
    metric: str,
    n_boot: int,
    federation: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    sites = [s.name for s in cohort.sites]
    rows: list[dict[str, Any]] = []
    for name, frame in frames.items():
        at = np.array([cohort.site_of[c] for c in frame.index])
        cells = {s: _ci(frame[at == s], info, metric, n_boot) for s in sites}
        cells["pooled"] = _ci(frame, info, metric, n_boot)
        rows.append({"model": name, "cells": cells})
    results = {
        "task": info.name,
        "metric": metric,
        "sites": {s.name: s.n_cases for s in cohort.sites},
        "federation": federation,
        "table": rows,
    }
    (out / "results.json").write_text(json.dumps(json_clean(results), indent=1))
    (out / "results.md").write_text(_markdown(results))
    _plot(federation, metric, out / "rounds.png")
    table = Table(
        title=f"Test {metric} (95% bootstrap CI): federated vs centralised vs sites alone"
    )
    for col in ["model", *sites, "pooled"]:
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], *[_cell(r["cells"][c]) for c in [*sites, "pooled"]])
    console.print(table)
    f = federation
    console.print(
        f"{f['rounds_run']} round(s); parameters sent: {f['bytes_to_sites'] / 1e6:.2f} MB to the "
        f"sites, {f['bytes_from_sites'] / 1e6:.2f} MB back"
    )
    console.print(f"Wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'rounds.png'}")
    return results


def _markdown(r: dict[str, Any]) -> str:
    sites = list(r["sites"])
    f = r["federation"]
    tested = r["table"][0]["cells"] if r["table"] else {}
    head = [
        "model",
        *[f"{s} ({r['sites'][s]} cases, {tested.get(s, {}).get('n', 0)} test)" for s in sites],
        f"pooled ({tested.get('pooled', {}).get('n', 0)} test)",
    ]
    lines = [
        f"Test {r['metric']} of task `{r['task']}` with 95% bootstrap CIs. Federated: "
        f"{f['strategy']}, {f['rounds_run']} round(s) of {f['local_epochs']} local epoch(s) "
        f"({f['mode']}); parameters sent {f['bytes_to_sites']:,} B to the sites and "
        f"{f['bytes_from_sites']:,} B back ({f['bytes_total']:,} B in all).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in r["table"]:
        cells = [_cell(row["cells"][c]) for c in [*sites, "pooled"]]
        lines.append("| " + " | ".join([row["model"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def _plot(f: dict[str, Any], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for key, pts in sorted(f["per_round"].items()):
        if not pts:
            continue
        x, y = zip(*pts, strict=True)
        pooled = key == metric
        label = "all sites (case-weighted)" if pooled else key.removeprefix("site:")
        ax.plot(x, y, marker="o", lw=2.5 if pooled else 1, alpha=1 if pooled else 0.6, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Global model per round ({f['strategy']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
