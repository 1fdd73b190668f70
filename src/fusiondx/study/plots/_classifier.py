"""Figures of a classifier's test predictions: ROC and precision-recall curves, the confusion
matrix and the calibration curve."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots._style import figure_uri, num, subplots, text


def roc_pr_chart(curves: list[tuple[str, str, dict[str, Any]]]) -> str:
    """ROC and PR curves side by side; curves = (label, colour, {"roc": .., "pr": ..})."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 4.6))
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
    return figure_uri(fig)


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
    fig, ax = subplots(figsize=(side + 1.2, side))
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
    return figure_uri(fig)


def calibration_chart(curves: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Reliability diagram over a histogram of predicted probabilities (shared x)."""
    import numpy as np

    fig, (ax, axh) = subplots(
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
    return figure_uri(fig)
