"""The accuracy-vs-cost figure: each entry's test metric against its FLOPs per case."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots._style import figure_uri, subplots, text


def cost_chart(rows: list[dict[str, Any]], metric: str, colors: dict[str, str]) -> str:
    """Point + CI per entry at its FLOPs per case (log axis), the cheapest-for-its-accuracy
    entries (the Pareto front) joined by a line; rows have id, label, flops, mean, low, high."""
    fig, ax = subplots(figsize=(9, 5.2))
    pts = [r for r in rows if r["flops"] > 0 and math.isfinite(r["mean"])]
    for r in pts:
        c = colors.get(r["id"], "#555555")
        low = r["low"] if math.isfinite(r["low"]) else r["mean"]
        high = r["high"] if math.isfinite(r["high"]) else r["mean"]
        ax.errorbar(
            r["flops"],
            r["mean"],
            yerr=[[r["mean"] - low], [high - r["mean"]]],
            fmt="o",
            color=c,
            ms=8,
            capsize=3.5,
            elinewidth=1.8,
            zorder=3,
        )
        ax.annotate(
            text(r["label"]),
            (r["flops"], r["mean"]),
            xytext=(7, 5),
            textcoords="offset points",
            fontsize=9.5,
            color="#323f4b",
        )
    front, best = [], -math.inf
    for r in sorted(pts, key=lambda r: (r["flops"], -r["mean"])):
        if r["mean"] > best:
            front.append(r)
            best = r["mean"]
    if len(front) > 1:
        ax.plot(
            [r["flops"] for r in front],
            [r["mean"] for r in front],
            color="#9aa5b1",
            lw=1.4,
            ls="--",
            zorder=1,
            label="Pareto front (no cheaper model is as accurate)",
        )
        ax.legend(loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per case (one case, every modality present; log scale)")
    ax.set_ylabel(f"test {text(metric)} (95% CI)")
    return figure_uri(fig)
