"""The body of the leave-one-site-out report (:mod:`fusiondx.study.sites`): per site, the
held-out metric beside the pooled model's on the same site, the drop and the drift score."""

from __future__ import annotations

import html
import math
from typing import Any

from fusiondx.study.plots import PALETTE, STYLE, figure_uri
from fusiondx.study.plots._style import subplots


def _ci(s: dict[str, Any] | None) -> str:
    if not s or s.get("mean") is None or not math.isfinite(s["mean"]):
        return "-"
    lo, hi = s.get("low"), s.get("high")
    if lo is None or hi is None:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def _chart(r: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    rows = [e for e in r["entries"] if e.get("site")]
    names = r["strategies"]
    sites = r["sites"]
    with plt.rc_context(STYLE):
        fig, ax = subplots(figsize=(max(5.5, 1.6 * len(sites) * len(names)), 3.8))
        width = 0.38 / max(1, len(names))
        for k, name in enumerate(names):
            for j, (arm, label) in enumerate(
                (("pooled_site", "seen (pooled split)"), ("held_out", "held out"))
            ):
                xs, ys, lo, hi = [], [], [], []
                for i, s in enumerate(sites):
                    e = next((e for e in rows if e["strategy"] == name and e["site"] == s), None)
                    v = (e or {}).get(arm) or {}
                    m = _num(v.get("mean"))
                    xs.append(i + (2 * k + j - (2 * len(names) - 1) / 2) * width)
                    ys.append(m)
                    lo.append(max(0.0, m - _num(v.get("low"))) if math.isfinite(m) else 0.0)
                    hi.append(max(0.0, _num(v.get("high")) - m) if math.isfinite(m) else 0.0)
                lo = [0.0 if not math.isfinite(v) else v for v in lo]
                hi = [0.0 if not math.isfinite(v) else v for v in hi]
                ax.bar(
                    xs,
                    [0 if not math.isfinite(y) else y for y in ys],
                    width * 0.95,
                    yerr=[lo, hi],
                    capsize=3,
                    color=PALETTE[(2 * k + j) % len(PALETTE)],
                    alpha=0.55 if arm == "pooled_site" else 0.95,
                    label=f"{name}: {label}" if len(names) > 1 else label,
                )
        ax.set_xticks(range(len(sites)), [html.unescape(s) for s in sites])
        ax.set_ylabel(f"test {r['metric']} (95% CI)")
        ax.set_ylim(0, 1.05)
        ax.legend(frameon=False, fontsize=9, loc="lower right")
        fig.tight_layout()
        return figure_uri(fig)


def sites_body(r: dict[str, Any]) -> str:
    """The answer, the chart and the per-site table of a leave-one-site-out study."""
    rows = [e for e in r["entries"] if e.get("site")]
    worst = max(
        (e for e in rows if e.get("drop")),
        key=lambda e: _num(e["drop"]["difference"]),
        default=None,
    )
    answer = (
        f"Largest drop when held out: <b>{html.escape(worst['site'])}</b> "
        f"({html.escape(worst['strategy'])}): unseen, its {r['metric']} is "
        f"{worst['drop']['difference']:.3f} [{worst['drop']['low']:+.3f}, "
        f"{worst['drop']['high']:+.3f}] lower than when its cases are seen in training "
        f"(negative: higher); drift score {_num(worst.get('drift_auroc')):.2f}."
        if worst
        else "No site has both a held-out and a pooled result."
    )
    table = "".join(
        f"<tr><td>{html.escape(e['site'])}</td><td>{html.escape(e['strategy'])}</td>"
        f"<td>{e['n_test']}</td><td>{_ci(e['held_out'])}</td><td>{e.get('n_pooled_site', '-')}</td>"
        f"<td>{_ci(e.get('pooled_site'))}</td>"
        f"<td>{_drop(e.get('drop'))}</td><td>{_num(e.get('drift_auroc')):.3f}</td></tr>"
        for e in rows
    )
    pooled = "".join(
        f"<li>{html.escape(e['strategy'])}, pooled split, all test cases: {_ci(e['pooled'])}</li>"
        for e in r["entries"]
        if not e.get("site")
    )
    return (
        f"<p class=answer>{answer}</p><img src='{_chart(r)}' alt='leave one site out'>"
        "<table><tr><th>held-out site</th><th>strategy</th><th>cases</th><th>held out [95% CI]</th>"
        "<th>its pooled test cases</th><th>pooled model on them</th><th>drop (pooled - held out)"
        "</th><th>drift (domain AUROC)</th></tr>"
        f"{table}</table><ul>{pooled}</ul><p class=note>Held out: trained on the other sites "
        "(validation drawn from them), tested on every case of the site. Pooled: trained on the "
        "config's split, which mixes every site, and scored on its test cases of that site; the "
        "drop is a paired bootstrap on those same cases (positive: the site does worse unseen). "
        f"Drift: {html.escape(r.get('drift', ''))}. Read off test cases; chooses nothing.</p>"
    )


def _drop(d: dict[str, Any] | None) -> str:
    if not d or d.get("difference") is None:
        return "-"
    return (
        f"{d['difference']:+.3f} [{_num(d.get('low')):+.3f}, {_num(d.get('high')):+.3f}], "
        f"p = {_num(d.get('p_value')):.3g}"
    )
