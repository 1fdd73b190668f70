"""Figures of what each modality is worth: the leave-one-out ablation, a modality removed at test
time, and a growing share of test cases missing one."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots._style import (
    KIND_COLORS,
    MOD_PALETTE,
    PALETTE,
    error_bars,
    figure_uri,
    lower_limit,
    num,
    signed,
    subplots,
    text,
    upper_limit,
)


def _bars(
    ax: Any,
    names: list[str],
    rows: list[dict[str, Any]],
    colors: list[str],
    notes: list[str],
    y0: float,
) -> None:
    """Bars from y0 with CI whiskers, the value above each and an optional note inside."""
    xs = range(len(rows))
    means = [r["mean"] if math.isfinite(r["mean"]) else y0 for r in rows]
    heights = [m - y0 for m in means]
    ax.bar(xs, heights, bottom=y0, color=colors, width=0.8, edgecolor="white")
    ax.errorbar(xs, means, yerr=error_bars(rows), fmt="none", ecolor="#333333", capsize=4, lw=1.4)
    for x, r, note in zip(xs, rows, notes, strict=True):
        if not math.isfinite(r["mean"]):
            ax.text(x, y0, "n/a", ha="center", va="bottom", color="#666666")
            continue
        top = r["high"] if math.isfinite(r["high"]) else r["mean"]
        ax.text(x, top, f"{r['mean']:.3f}", ha="center", va="bottom", fontsize=10, color="#222222")
        if note:
            ax.text(
                x,
                y0 + 0.45 * (r["mean"] - y0),
                note,
                ha="center",
                va="center",
                fontsize=10,
                fontweight="bold",
                color="white",
            )
    ax.set_xticks(list(xs), names, rotation=0)
    ax.grid(axis="x", visible=False)


def ablation_chart(
    full: dict[str, float],
    without: dict[str, dict[str, float]],
    only: dict[str, dict[str, float]],
    winner_label: str,
    metric: str,
) -> str:
    """Left: winner with all modalities vs each left out (drop on the bar); right: only one."""
    mods = list(dict.fromkeys([*without, *only]))
    panels = [("without", without), ("only", only)] if only else [("without", without)]
    widths = [len(without) + 1, max(len(only), 1)] if only else [1]
    values = [full.get("low", math.nan), full.get("mean", math.nan)]
    for _, d in panels:
        values += [v.get("low", math.nan) for v in d.values()]
        values += [v.get("mean", math.nan) for v in d.values()]
    y0, y1 = (
        lower_limit(values, pad=0.08),
        upper_limit(
            [full.get("high", math.nan)]
            + [v.get("high", math.nan) for _, d in panels for v in d.values()]
        ),
    )
    fig, axes = subplots(
        1,
        len(panels),
        figsize=(10, 4.8),
        sharey=True,
        gridspec_kw={"width_ratios": widths, "wspace": 0.08},
    )
    axes = list(axes) if len(panels) > 1 else [axes]
    fm = full.get("mean", math.nan)
    left_rows = [full] + [without[m] for m in without]
    notes = [""] + [
        (
            signed(without[m]["mean"] - fm)
            if math.isfinite(fm) and math.isfinite(without[m]["mean"])
            else ""
        )
        for m in without
    ]
    colors = [KIND_COLORS["fusion"]] + [KIND_COLORS["ablation"]] * len(without)
    _bars(axes[0], ["all"] + [f"− {text(m)}" for m in without], left_rows, colors, notes, y0)
    axes[0].set_title(f"{text(winner_label)}: leave one modality out", loc="left")
    axes[0].set_ylabel(f"test {metric} (95% CI)")
    if only:
        rows = [only[m] for m in mods if m in only]
        _bars(
            axes[1],
            [text(m) for m in mods if m in only],
            rows,
            [KIND_COLORS["single"]] * len(rows),
            [""] * len(rows),
            y0,
        )
        axes[1].set_title("only this modality", loc="left")
        axes[1].tick_params(axis="y", left=False)
    for ax in axes:
        if math.isfinite(fm):
            ax.axhline(fm, color=KIND_COLORS["fusion"], ls="--", lw=1.2, zorder=1)
        ax.set_ylim(y0, y1 + 0.1 * (y1 - y0))
    if math.isfinite(fm):
        axes[-1].text(
            1.0,
            fm,
            f" all modalities\n {fm:.3f}",
            transform=axes[-1].get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=9.5,
            color=KIND_COLORS["fusion"],
        )
    return figure_uri(fig)


def removed_chart(
    removed: dict[str, dict[str, float]],
    labels: dict[str, str],
    colors: dict[str, str],
    metric: str,
) -> str:
    """Grouped bars: each entry evaluated with one modality removed at test time."""
    import numpy as np

    conds = list(dict.fromkeys(c for d in removed.values() for c in d))
    conds = (["none"] if "none" in conds else []) + [c for c in conds if c != "none"]
    ents = list(removed)
    vals = [num(removed[e].get(c)) for e in ents for c in conds]
    y0 = lower_limit(vals, pad=0.08)
    fig, ax = subplots(figsize=(10, 4.6))
    width = 0.8 / len(ents)
    x = np.arange(len(conds))
    for i, e in enumerate(ents):
        v = [num(removed[e].get(c)) for c in conds]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(
            pos,
            [(a - y0) if math.isfinite(a) else 0 for a in v],
            bottom=y0,
            width=width * 0.92,
            color=colors.get(e, PALETTE[i % len(PALETTE)]),
            label=text(labels.get(e, e)),
        )
        for p, a in zip(pos, v, strict=True):
            ok = math.isfinite(a)
            ax.text(
                p,
                a if ok else y0,
                f"{a:.3f}" if ok else "n/a",
                ha="center",
                va="bottom",
                fontsize=9.5 if ok else 10.5,
                color="#222222" if ok else "#777777",
                fontstyle="normal" if ok else "italic",
            )
    ax.set_xticks(x, ["all present" if c == "none" else f"without {text(c)}" for c in conds])
    finite = [v for v in vals if math.isfinite(v)]
    top = max(finite) if finite else 1.0
    ax.set_ylim(y0, top + 0.08 * (top - y0))
    ax.set_ylabel(f"test {metric}")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(ents))
    return figure_uri(fig)


def missing_chart(
    missing: dict[str, dict[str, list[float]]], labels: dict[str, str], metric: str
) -> str:
    """Metric vs share of test cases missing one modality; one panel per entry."""
    ents = list(missing)
    mods = list(dict.fromkeys(m for d in missing.values() for m in d if m != "rates"))
    n = len(ents)
    fig, axes = subplots(1, n, figsize=(10 if n > 1 else 6.5, 4.3), sharey=True, squeeze=False)
    vals = [num(v) for d in missing.values() for m, vs in d.items() if m != "rates" for v in vs]
    for ax, e in zip(axes[0], ents, strict=True):
        d = missing[e]
        rates = [100 * num(r) for r in d.get("rates", [])]
        for j, m in enumerate(mods):
            if m in d and len(d[m]) == len(rates):
                ax.plot(
                    rates,
                    [num(v) for v in d[m]],
                    marker="o",
                    lw=2.2,
                    ms=5.5,
                    color=MOD_PALETTE[j % len(MOD_PALETTE)],
                    label=text(m),
                )
        ax.set_title(text(labels.get(e, e)), loc="left")
        ax.set_xlabel("test cases missing the modality (%)")
        ax.set_xticks([0, 25, 50, 75, 100])
    axes[0][0].set_ylabel(f"test {metric}")
    axes[0][0].set_ylim(lower_limit(vals, pad=0.04), upper_limit(vals) + 0.02)
    seen: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    fig.tight_layout()
    fig.legend(
        list(seen.values()),
        [f"{lab} missing" for lab in seen],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=max(1, len(seen)),
    )
    return figure_uri(fig)
