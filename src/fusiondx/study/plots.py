"""Matplotlib figures of the study report, each returned as a ``data:image/png;base64`` URI.

Every function draws one figure from plain numbers (no I/O besides the PNG in memory) and closes
it. The caller selects the Agg backend first (:func:`fusiondx.study.report.write_report` does).
Colours follow the Okabe-Ito palette, which stays distinct for colour-blind readers.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

DPI = 110
KIND_COLORS = {
    "single": "#0072B2",
    "fusion": "#D55E00",
    "ablation": "#CC79A7",
    "tuned": "#E69F00",
    "reference": "#009E73",
    "probe": "#7B8794",
}
KIND_NAMES = {
    "single": "single modality",
    "fusion": "fusion",
    "ablation": "ablation",
    "tuned": "tuned",
    "reference": "reference (scikit-learn)",
    "probe": "shortcut probe",
}
PALETTE = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B"]
MOD_PALETTE = [
    "#332288",
    "#117733",
    "#CC6677",
    "#DDAA33",
    "#44AA99",
    "#AA4499",
    "#88CCEE",
    "#882255",
]  # Paul Tol's muted scheme: modalities, distinct from the kind colours
HIGHLIGHT = "#FFF1C2"
STYLE: dict[RcKeyType, Any] = {
    "font.size": 11,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.edgecolor": "#555555",
    "axes.titlepad": 10,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": "#222222",
    "axes.labelcolor": "#222222",
}


def text(s: Any) -> str:
    """A user string safe for matplotlib (no mathtext from '$')."""
    return str(s).replace("$", r"\$")


def num(x: Any) -> float:
    """A float, NaN for anything missing or not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _subplots(*args: Any, **kw: Any) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def _floor(values: Sequence[float], pad: float = 0.05) -> float:
    """A lower y limit under the smallest finite value, on a 0.05 grid, never below 0."""
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return 0.0
    return max(0.0, math.floor((min(vals) - pad) / 0.05) * 0.05)


def _ceil(values: Sequence[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return 1.0 if not vals or max(vals) <= 1.0 else max(vals) * 1.05


def _yerr(rows: Sequence[dict[str, Any]]) -> list[list[float]]:
    lo = [max(0.0, r["mean"] - r["low"]) if math.isfinite(r["low"]) else 0.0 for r in rows]
    hi = [max(0.0, r["high"] - r["mean"]) if math.isfinite(r["high"]) else 0.0 for r in rows]
    return [lo, hi]


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
    fig, ax = _subplots(figsize=(10, 1.2 + 0.36 * n))
    ys = list(range(n))[::-1]
    lows = [r["low"] if math.isfinite(r["low"]) else r["mean"] for r in rows]
    highs = [r["high"] if math.isfinite(r["high"]) else r["mean"] for r in rows]
    x0, x1 = _floor(lows), _ceil(highs)
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
            xerr=[[_yerr([r])[0][0]], [_yerr([r])[1][0]]],
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
    return _uri(fig)


def roc_pr_chart(curves: list[tuple[str, str, dict[str, Any]]]) -> str:
    """ROC and PR curves side by side; curves = (label, colour, {"roc": .., "pr": ..})."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 4.6))
    ax1.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="chance")
    for label, color, c in curves:
        roc, pr = c.get("roc") or {}, c.get("pr") or {}
        if roc.get("fpr") is not None:
            ax1.plot(
                roc["fpr"],
                roc["tpr"],
                color=color,
                lw=2.2,
                label=f"{text(label)} (AUC {_f3(roc.get('auc'))})",
            )
        if pr.get("recall") is not None:
            ax2.plot(
                pr["recall"],
                pr["precision"],
                color=color,
                lw=2.2,
                label=f"{text(label)} (AP {_f3(pr.get('ap'))})",
                drawstyle="steps-post",
            )
    ax1.set(
        xlabel="false positive rate (1 − specificity)",
        ylabel="true positive rate (sensitivity)",
        title="ROC curve",
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.01),
    )
    ax2.set(
        xlabel="recall (sensitivity)",
        ylabel="precision (PPV)",
        title="Precision-recall curve",
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.02),
    )
    ax1.set_aspect("equal")
    ax2.set_aspect("equal")
    ax1.legend(loc="lower right")
    ax2.legend(loc="lower left")
    fig.tight_layout(w_pad=3)
    return _uri(fig)


def _f3(x: Any) -> str:
    v = num(x)
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def confusion_chart(labels: list[str], matrix: list[list[float]], title: str = "") -> str:
    """Counts with row percentages; rows = true class."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    k = len(labels)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    side = min(9.0, 3.2 + 0.8 * k)
    fig, ax = _subplots(figsize=(side + 1.2, side))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    big = 13 if k <= 4 else 10
    for i in range(k):
        for j in range(k):
            color = "white" if frac[i, j] > 0.55 else "#1a1a1a"
            ax.text(
                j,
                i,
                f"{m[i, j]:.0f}\n{100 * frac[i, j]:.0f}%",
                ha="center",
                va="center",
                fontsize=big,
                color=color,
                fontweight="bold" if i == j else "normal",
            )
    names = [text(s) for s in labels]
    tilt = k > 3 or max(map(len, names), default=0) * k > 48
    ax.set_xticks(
        range(k),
        names,
        rotation=30 if tilt else 0,
        ha="right" if tilt else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(text(title))
    for s in ax.spines.values():
        s.set_visible(False)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("share of the true class")
    cb.outline.set_visible(False)
    return _uri(fig)


def calibration_chart(curves: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Reliability diagram over a histogram of predicted probabilities (shared x)."""
    import numpy as np

    fig, (ax, axh) = _subplots(
        2,
        1,
        figsize=(7.2, 7.0),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08},
    )
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="perfectly calibrated")
    n = len(curves)
    for i, (label, color, c) in enumerate(curves):
        cal = c.get("calibration") or {}
        if cal.get("mean_predicted") is not None:
            ax.plot(
                cal["mean_predicted"],
                cal["fraction_positive"],
                marker="o",
                color=color,
                lw=2,
                ms=6,
                label=text(label),
            )
        hist = c.get("histogram") or {}
        if hist.get("edges") is not None and hist.get("counts") is not None:
            e = np.asarray(hist["edges"], dtype=float)
            w = np.diff(e) / (n + 0.5)
            axh.bar(
                e[:-1] + w * (i + 0.25),
                hist["counts"],
                width=w,
                align="edge",
                color=color,
                alpha=0.85,
                label=text(label),
            )
    ax.set(
        ylabel="observed fraction positive",
        title="Calibration (reliability diagram)",
        xlim=(-0.02, 1.02),
        ylim=(-0.02, 1.02),
    )
    ax.legend(loc="upper left")
    axh.set(xlabel="predicted probability of the positive class", ylabel="test cases")
    axh.grid(axis="x", visible=False)
    return _uri(fig)


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
    ax.errorbar(xs, means, yerr=_yerr(rows), fmt="none", ecolor="#333333", capsize=4, lw=1.4)
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
        _floor(values, pad=0.08),
        _ceil(
            [full.get("high", math.nan)]
            + [v.get("high", math.nan) for _, d in panels for v in d.values()]
        ),
    )
    fig, axes = _subplots(
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
    return _uri(fig)


def signed(v: float) -> str:
    """'+0.012' / '−0.070' with a real minus sign."""
    return f"{v:+.3f}".replace("-", "−")


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
    y0 = _floor(vals, pad=0.08)
    fig, ax = _subplots(figsize=(10, 4.6))
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
    return _uri(fig)


def missing_chart(
    missing: dict[str, dict[str, list[float]]], labels: dict[str, str], metric: str
) -> str:
    """Metric vs share of test cases missing one modality; one panel per entry."""
    ents = list(missing)
    mods = list(dict.fromkeys(m for d in missing.values() for m in d if m != "rates"))
    n = len(ents)
    fig, axes = _subplots(1, n, figsize=(10 if n > 1 else 6.5, 4.3), sharey=True, squeeze=False)
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
    axes[0][0].set_ylim(_floor(vals, pad=0.04), _ceil(vals) + 0.02)
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
    return _uri(fig)


def training_chart(
    curves: dict[str, dict[str, list[float]]],
    labels: dict[str, str],
    colors: dict[str, str],
    metric_key: str,
    metric: str,
) -> str:
    """Per entry: train/val loss (left) and the validation metric (right) against epoch."""
    ents = list(curves)
    fig, axes = _subplots(len(ents), 2, figsize=(10, 3.3 * len(ents)), squeeze=False)
    for row, e in zip(axes, ents, strict=True):
        c = curves[e]
        color = colors.get(e, PALETTE[0])
        ep = c.get("epoch") or list(range(len(c.get("train_loss") or c.get("val_loss") or [])))
        if c.get("train_loss"):
            row[0].plot(ep, c["train_loss"], color=color, lw=2, ls="--", label="train loss")
        if c.get("val_loss"):
            row[0].plot(ep, c["val_loss"], color=color, lw=2, label="validation loss")
        row[0].set(title=f"{text(labels.get(e, e))}: loss", xlabel="epoch", ylabel="loss")
        row[0].legend(loc="upper right")
        key = (
            metric_key
            if metric_key in c
            else next((k for k in c if k.startswith("val_") and k != "val_loss"), None)
        )
        if key and c.get(key):
            v = [num(x) for x in c[key]]
            row[1].plot(ep, v, color=color, lw=2, marker="o", ms=3.5)
            good = [(x, y) for x, y in zip(ep, v, strict=False) if math.isfinite(y)]
            if good:
                bx, by = max(good, key=lambda t: t[1])
                row[1].plot(bx, by, marker="*", ms=15, color=color, mec="white", zorder=3)
                row[1].text(
                    0.97,
                    0.06,
                    f"best {by:.3f} at epoch {bx}",
                    ha="right",
                    transform=row[1].transAxes,
                    fontsize=10,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"},
                )
            row[1].set(ylabel=f"validation {metric if key == metric_key else key[4:]}")
        row[1].set(title=f"{text(labels.get(e, e))}: validation {metric}", xlabel="epoch")
    fig.tight_layout(h_pad=2.0, w_pad=3.0)
    return _uri(fig)
