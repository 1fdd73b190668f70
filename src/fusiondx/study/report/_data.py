"""The report's sections on the inputs: cases per split and class, modality availability, and
the resolved configuration."""

from __future__ import annotations

import math
from typing import Any

from fusiondx.study.plots import num
from fusiondx.study.report._context import Context, esc, note
from fusiondx.study.report._format import fmt


def data_section(c: Context) -> str:
    d = c.r.get("data") or {}
    splits, avail = d.get("splits") or {}, d.get("availability") or {}
    per_fold = d.get("per_fold") or []
    parts = []
    if per_fold:
        parts.append(
            f"<h3>Cases per split and class, in each of the {len(per_fold)} folds</h3>"
            + _split_table(
                [(f"fold {k}", name, s) for k, f in enumerate(per_fold) for name, s in f.items()]
            )
        )
    elif splits:
        parts.append(
            "<h3>Cases per split and class</h3>"
            + _split_table([("", name, s) for name, s in splits.items()])
        )
    else:
        parts.append(note("No split summary in the results."))
    if avail:
        sp = list(dict.fromkeys(k for v in avail.values() for k in v))
        rows = []
        for m, v in avail.items():
            cells = "".join(_avail_cell(num(v.get(s))) for s in sp)
            rows.append(f'<tr><td class="l">{esc(m)}</td>{cells}</tr>')
        fold0 = " (fold 0)" if per_fold else ""
        parts.append(
            f'<h3>Modality availability (% of cases){fold0}</h3><div class="tw">'
            f'<table class="narrow"><tr><th class="l">Modality</th>'
            f"{''.join(f'<th>{esc(s)}</th>' for s in sp)}</tr>{''.join(rows)}"
            "</table></div>"
        )
    else:
        parts.append(note("No modality availability in the results."))
    return "".join(parts)


def _split_table(rows_in: list[tuple[str, str, dict[str, Any]]]) -> str:
    """(fold, split, {cases, classes}) rows as one table, with each class's share."""
    classes = list(dict.fromkeys(k for _, _, s in rows_in for k in s.get("classes") or {}))
    folds = any(f for f, _, _ in rows_in)
    head = (
        ('<th class="l">Fold</th>' if folds else "")
        + '<th class="l">Split</th><th>Cases</th>'
        + "".join(f"<th>{esc(k)}</th>" for k in classes)
    )
    rows = []
    for fold, name, s in rows_in:
        n = num(s.get("cases"))
        cells = []
        for k in classes:
            v = num((s.get("classes") or {}).get(k))
            pct = f' <span class="pc">({100 * v / n:.0f}%)</span>' if n > 0 and v == v else ""
            cells.append(f"<td>{fmt(v, 0)}{pct}</td>")
        first = f'<td class="l">{esc(fold)}</td>' if folds else ""
        rows.append(
            f'<tr>{first}<td class="l">{esc(name)}</td><td>{fmt(n, 0)}</td>{"".join(cells)}</tr>'
        )
    return f'<div class="tw"><table class="narrow"><tr>{head}</tr>{"".join(rows)}</table></div>'


def _avail_cell(v: float) -> str:
    if math.isnan(v):
        return "<td>n/a</td>"
    alpha = min(0.65, 0.04 + 1.2 * (1 - v))  # the more missing, the more orange
    return f'<td style="background:rgba(230,159,0,{alpha:.2f})">{100 * v:.0f}%</td>'


def config_section(c: Context) -> str:
    y = c.study.get("config_yaml")
    return f"<pre>{esc(y)}</pre>" if y else note("No resolved configuration in the results.")
