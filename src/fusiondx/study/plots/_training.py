"""The training-curve figure: losses and the validation metric against epoch."""

from __future__ import annotations

import math

from fusiondx.study.plots._style import PALETTE, figure_uri, num, subplots, text


def training_chart(
    curves: dict[str, dict[str, list[float]]],
    labels: dict[str, str],
    colors: dict[str, str],
    metric_key: str,
    metric: str,
) -> str:
    """Per entry: train/val loss (left) and the validation metric (right) against epoch."""
    ents = list(curves)
    fig, axes = subplots(len(ents), 2, figsize=(10, 3.3 * len(ents)), squeeze=False)
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
    return figure_uri(fig)
