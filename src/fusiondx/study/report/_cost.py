"""Report section "Accuracy vs computational cost": each entry's test metric against its FLOPs
per case, with the cost of the winner and of the cheapest entry about as accurate."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study import plots
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import fmt_count


def _rows(c: Context) -> list[dict[str, Any]]:
    rows = []
    for e in c.entries:
        flops = plots.num(e.get("flops_per_case"))
        s = (e.get("test") or {}).get(c.pm) or {}
        if math.isnan(flops) or flops <= 0:
            continue
        rows.append(
            {
                "id": e.get("id"),
                "label": c.label.get(e.get("id"), str(e.get("id"))),
                "flops": flops,
                "mean": plots.num(s.get("mean")),
                "low": plots.num(s.get("low")),
                "high": plots.num(s.get("high")),
            }
        )
    return rows


def cost_section(c: Context) -> str:
    rows = _rows(c)
    if len(rows) < 2:
        return note(
            "The study's runs do not record FLOPs per case (runs trained before they were "
            "counted, or references); section skipped."
        )
    parts = [
        f"<p>Test {esc(c.pname)} (95% bootstrap CI) of every model against its forward FLOPs "
        "for one case with every modality present (matrix products and convolutions, counted "
        "by <code>torch.utils.flop_counter</code>). Models up and to the left give more for "
        "less; the dashed line joins those no cheaper model beats. The <code>efficient</code> "
        "preset (<code>preset: efficient</code> in a config) is the cheap end of this chart.</p>",
        figure(
            plots.cost_chart(rows, c.pname, c.colors),
            f"{c.pname} against FLOPs per case; bars are 95% CIs.",
        ),
    ]
    win = next((r for r in rows if r["id"] == c.winner), None)
    if win is not None and math.isfinite(win["mean"]):
        close = [r for r in rows if math.isfinite(r["mean"]) and r["mean"] >= win["mean"] - 0.01]
        cheap = min(close, key=lambda r: r["flops"])
        line = (
            f"The winner, {esc(win['label'])}, costs {esc(fmt_count(win['flops'], 'FLOP'))} per "
            "case."
        )
        if cheap["id"] != win["id"]:
            saved = 1 - cheap["flops"] / win["flops"]
            line += (
                f" {esc(cheap['label'])} is within 0.01 {esc(c.pname)} of it at "
                f"{esc(fmt_count(cheap['flops'], 'FLOP'))} ({saved:.0%} fewer FLOPs)."
            )
        parts.append(f"<p>{line}</p>")
    return "".join(parts)
