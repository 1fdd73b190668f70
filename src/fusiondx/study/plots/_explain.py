"""The figure of "Which modality drives the prediction": mean |Shapley| and permutation importance."""

from __future__ import annotations

from typing import Any

from fusiondx.study.plots._style import MOD_PALETTE, error_bars, figure_uri, num, subplots, text


def drivers_chart(entries: dict[str, dict[str, Any]], labels: dict[str, str], metric: str) -> str:
    """One row per entry: mean |Shapley| (left) and the metric drop when shuffled (right)."""
    import numpy as np

    fig, axes = subplots(len(entries), 2, figsize=(10, 2.2 + 1.9 * len(entries)), squeeze=False)
    for r, (eid, e) in enumerate(entries.items()):
        mods = list(e.get("mean_abs") or {})
        colors = [MOD_PALETTE[i % len(MOD_PALETTE)] for i in range(len(mods))]
        y = np.arange(len(mods))[::-1]
        shap = [num(e["mean_abs"][m]) for m in mods]
        ax = axes[r, 0]
        ax.barh(y, shap, color=colors)
        for yy, v in zip(y, shap, strict=True):
            ax.text(v, yy, f" {v:.3f}", va="center", fontsize=9)
        ax.set_yticks(y, [text(m) for m in mods])
        ax.set_xlim(0, max([*shap, 1e-6]) * 1.3)
        ax.set_title(f"{text(labels.get(eid, eid))}: mean |Shapley value|", fontsize=10)
        perm = e.get("permutation") or {}
        rows = [{k: num((perm.get(m) or {}).get(k)) for k in ("mean", "low", "high")} for m in mods]
        ax = axes[r, 1]
        ax.barh(y, [row["mean"] for row in rows], xerr=error_bars(rows), color=colors, capsize=3)
        ax.axvline(0, color="#333", lw=0.8)
        ax.set_yticks(y, [text(m) for m in mods])
        ax.set_title(f"drop in test {metric} when shuffled", fontsize=10)
    fig.tight_layout()
    return figure_uri(fig)
