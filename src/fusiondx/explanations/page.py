"""The explanation page of one case: a waterfall from the base rate to the prediction (the
modality Shapley values), then each modality's attribution; PNGs beside the page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fusiondx.explanations.case import CaseExplanation

CSS = """
body{margin:0;background:#f3f4f6;color:#1f2933;font:15px/1.55 -apple-system,"Segoe UI",Roboto,
Arial,"DejaVu Sans",sans-serif}main{max-width:980px;margin:20px auto;background:#fff;
padding:24px 36px;border-radius:10px}h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;
margin:30px 0 8px;border-bottom:2px solid #e5e7eb;padding-bottom:4px}.sub{color:#616e7c}
img{max-width:100%;display:block;margin:8px auto}.note{color:#7b8794;font-style:italic}
.text{border:1px solid #e5e7eb;padding:12px;line-height:2}.tok{border-radius:3px;padding:1px 0}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:right}
td.l,th.l{text-align:left}
"""


def waterfall_figure(
    names: Sequence[str], values: Sequence[float], base: float, prediction: float, out: Path
) -> Path:
    """Bars from the base (every modality absent) through each modality's Shapley value to the
    prediction; the largest magnitudes first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(values)), key=lambda i: -abs(values[i]))
    fig, ax = plt.subplots(figsize=(6.8, 0.45 * len(values) + 1.6))
    labels = ["base (no modality)", *[names[i] for i in order], "prediction"]
    y = list(range(len(labels)))[::-1]
    ax.barh(y[0], base, color="#9aa5b1")
    at = base
    for k, i in enumerate(order, start=1):
        v = values[i]
        ax.barh(y[k], v, left=at, color="#d55e00" if v >= 0 else "#0072b2")
        ax.text(at + v, y[k], f" {v:+.3f}", va="center", fontsize=8)
        at += v
    ax.barh(y[-1], prediction, color="#323f4b")
    ax.text(base, y[0], f" {base:.3f}", va="center", fontsize=8)
    ax.text(prediction, y[-1], f" {prediction:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("probability of the explained class", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_page(e: CaseExplanation, folder: Path) -> Path:
    """Write ``explanation.html``, ``explanation.json`` and ``shapley.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [m.name for m in e.modalities]
    waterfall_figure(
        names, [m.shapley for m in e.modalities], e.base, e.probability, folder / "shapley.png"
    )
    esc = html.escape
    probs = "".join(
        f"<tr><td class=l>{esc(c)}</td><td>{p:.3f}</td></tr>" for c, p in e.probabilities.items()
    )
    rows = "".join(
        f"<tr><td class=l>{esc(m.name)}</td><td class=l>{esc(m.kind)}</td>"
        f"<td class=l>{'present' if m.present else 'absent'}</td><td>{m.shapley:+.4f}</td></tr>"
        for m in e.modalities
    )
    parts = [
        f"<h1>Case {esc(e.case_id)}</h1>",
        f'<p class="sub">run {esc(e.run)} · task {esc(e.task)} · explained class '
        f"<b>{esc(e.explained)}</b>: probability {e.probability:.3f}"
        + (f" · true label: {esc(e.truth)}" if e.truth is not None else "")
        + "</p>",
        f"<table><tr><th class=l>class</th><th>probability</th></tr>{probs}</table>",
        "<h2>Which modality drives this prediction</h2>",
        '<img src="shapley.png" alt="modality Shapley values">',
        f'<p class="note">Exact Shapley values over the modalities: each modality\'s average '
        f"change in the probability of '{esc(e.explained)}' when it is added to every subset of "
        f"the others (absent = masked, as for a missing modality). Base {e.base:.3f} is the "
        f"prediction with no modality; base + values = {e.probability:.3f}. An absent modality "
        "gets 0.</p>",
        "<table><tr><th class=l>modality</th><th class=l>kind</th><th class=l>this case</th>"
        f"<th>Shapley value</th></tr>{rows}</table>",
    ]
    for m in e.modalities:
        parts.append(f"<h2>{esc(m.name)} ({esc(m.kind)})</h2>")
        if not m.present:
            parts.append('<p class="note">Absent for this case: nothing to attribute.</p>')
            continue
        parts.append(f'<p class="sub">{esc(m.method)}</p>')
        if m.png:
            parts.append(f'<img src="{esc(m.png)}" alt="{esc(m.name)} attribution">')
        if m.html is not None:
            parts.append(f'<div class="text">{m.html}</div>')
            parts.append(
                '<p class="note">Orange tokens raise the probability of the explained class, '
                "blue ones lower it (hover for the score).</p>"
            )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>FusionDx explanation: {esc(e.case_id)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )
    out = folder / "explanation.html"
    out.write_text(page, encoding="utf-8")
    (folder / "explanation.json").write_text(json.dumps(e.to_dict(), indent=1))
    return out
