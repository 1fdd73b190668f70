"""The ranked comparison figure: every entry's test metric with its CI, best on top."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots._style import (
    HIGHLIGHT,
    KIND_COLORS,
    KIND_NAMES,
    error_bars,
    figure_uri,
    lower_limit,
    subplots,
    text,
    upper_limit,
)


def ranked_chart(
    rows: list[dict[str, Any]],
    metric: str,
    winner: str | None,
    best_single: str | None,
    pooling: str = "mean over seeds",
    best_reference: str | None = None,
) -> str:
    """Point + CI for every entry, best on top; rows have id, label, kind, mean, low, high."""
    from matplotlib.lines import Line2D

    n = len(rows)
    fig, ax = subplots(figsize=(10, 1.2 + 0.36 * n))
    ys = list(range(n))[::-1]
    lows = [r["low"] if math.isfinite(r["low"]) else r["mean"] for r in rows]
    highs = [r["high"] if math.isfinite(r["high"]) else r["mean"] for r in rows]
    x0, x1 = lower_limit(lows), upper_limit(highs)
    for y, r in zip(ys, rows, strict=True):
        if r["id"] in (winner, best_single, best_reference):
            ax.axhspan(y - 0.45, y + 0.45, color=HIGHLIGHT, zorder=0, lw=0)
        if not math.isfinite(r["mean"]):
            ax.text(x0, y, "  n/a", va="center", color="#888888", fontsize=10)
            continue
        c = KIND_COLORS.get(r["kind"], "#555555")
        ax.errorbar(
            r["mean"],
            y,
            xerr=[[error_bars([r])[0][0]], [error_bars([r])[1][0]]],
            fmt="none",
            ecolor=c,
            elinewidth=2.2,
            capsize=3.5,
            zorder=2,
        )
        marker = "*" if r["id"] == winner else ("D" if r["id"] == best_single else "o")
        ax.plot(
            r["mean"],
            y,
            marker=marker,
            ms=15 if marker == "*" else 8,
            color=c,
            mec="white",
            mew=0.8,
            zorder=3,
        )
        ax.text(
            max(highs) + 0.012 * (x1 - x0),
            y,
            f"{r['mean']:.3f}",
            va="center",
            fontsize=9.5,
            color="#333333",
        )
    labels = []
    for r in rows:
        tag = {winner: " (winner)", best_single: " (best single)"}.get(r["id"], "")
        tag = tag or (" (best reference)" if r["id"] == best_reference else "")
        labels.append(text(r["label"]) + tag)
    ax.set_yticks(ys, labels)
    for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
        if r["id"] in (winner, best_single, best_reference):
            tick.set_fontweight("bold")
    ax.set_xlim(x0, x1 + 0.09 * (x1 - x0))
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"test {metric} ({pooling}, 95% CI)")
    kinds = [k for k in KIND_COLORS if any(r["kind"] == k for r in rows)]
    handles = [
        Line2D([], [], marker="o", ls="", color=KIND_COLORS[k], ms=8, label=KIND_NAMES[k])
        for k in kinds
    ]
    handles.append(Line2D([], [], marker="*", ls="", color="#555555", ms=13, label="winner"))
    if best_single != winner:
        handles.append(
            Line2D([], [], marker="D", ls="", color="#555555", ms=7, label="best single")
        )
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(handles),
        handletextpad=0.3,
        columnspacing=1.4,
    )
    return figure_uri(fig)
