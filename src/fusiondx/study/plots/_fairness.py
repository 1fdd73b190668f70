"""The metric of each subgroup (sex, age band, site, ...) with its 95% CI, one panel per
subgroup column, one marker per model."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots._style import PALETTE, figure_uri, num, subplots, text


def subgroup_chart(
    columns: dict[str, dict[str, dict[str, Any]]],
    names: dict[str, str],
    colors: dict[str, str],
    metric: str,
    metric_label: str,
) -> str:
    """``columns``: column -> model id -> that model's subgroup table (``groups`` rows with
    ``metrics[metric]`` mean/low/high or None, ``n``, ``small``). Small subgroups are drawn
    hollow and starred; an undefined value is written as such at the left edge."""
    cols = list(columns)
    heights = [max(1, max(len(t.get("groups", [])) for t in columns[c].values())) for c in cols]
    fig, axes = subplots(
        len(cols),
        1,
        figsize=(7.5, 0.9 + sum(0.42 * h + 0.55 for h in heights)),
        gridspec_kw={"height_ratios": [h + 1 for h in heights]},
        squeeze=False,
    )
    models = list(dict.fromkeys(m for c in cols for m in columns[c]))
    offsets = {m: (k - (len(models) - 1) / 2) * 0.22 for k, m in enumerate(models)}
    lows = [
        num(r["metrics"][metric]["low"])
        for c in cols
        for t in columns[c].values()
        for r in t.get("groups", [])
        if r["metrics"].get(metric)
    ]
    x0 = max(
        0.0, math.floor((min([v for v in lows if math.isfinite(v)] or [0.5]) - 0.05) * 10) / 10
    )
    for ax, col in zip(axes[:, 0], cols, strict=True):
        labels: list[str] = []
        for k, m in enumerate(models):
            table = columns[col].get(m) or {}
            rows = table.get("groups", [])
            if not labels:
                labels = [f"{r['group']}{' *' if r['small'] else ''} (n={r['n']})" for r in rows]
            color = colors.get(m, PALETTE[k % len(PALETTE)])
            for y, r in enumerate(rows):
                v = r["metrics"].get(metric)
                yy = y + offsets[m]
                if not v:
                    ax.text(x0 + 0.01, yy, "undefined", va="center", fontsize=9, color="#666666")
                    continue
                mean, lo, hi = num(v["mean"]), num(v["low"]), num(v["high"])
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.plot([lo, hi], [yy, yy], color=color, lw=1.6)
                ax.plot(
                    [mean],
                    [yy],
                    "o",
                    color=color,
                    mfc="white" if r["small"] else color,
                    ms=7,
                    label=text(names.get(m, m)) if y == 0 else None,
                )
        ax.set_yticks(range(len(labels)), [text(s) for s in labels])
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlim(x0, 1.02)
        ax.set_title(text(col), loc="left", fontsize=12)
        ax.grid(axis="y", visible=False)
    axes[-1, 0].set_xlabel(f"{metric_label} (95% CI)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    top = 1 - 0.45 / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.legend(handles, labels, loc="upper center", ncol=len(models), fontsize=9, frameon=False)
    return figure_uri(fig)
