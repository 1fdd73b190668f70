"""Report section "Fairness by subgroup": the metric of each subgroup with its CI for the
winner and the best single model, a table per subgroup column, the largest gap and fairlearn's
equalised-odds and demographic-parity differences."""

from __future__ import annotations

from typing import Any

from fusiondx.study import plots
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import fmt, fmt_ci, metric_name


def fairness_section(c: Context) -> str:
    fr = c.r.get("fairness")
    if not isinstance(fr, dict) or not fr.get("entries"):
        return note(
            "No fairness columns in this study's config (fairness.columns, e.g. [sex, age_band, "
            "site]); section skipped."
        )
    entries = {i: t for i, t in fr["entries"].items() if isinstance(t, dict)}
    why = next((t["why"] for t in entries.values() if t.get("why")), None)
    if why:
        return note(f"Fairness not computed: {why}.")
    first = next(iter(entries.values()))
    metric = c.pm if c.pm in first["metrics"] else first["metrics"][0]
    mname = metric_name(metric)
    ids = c.order(entries)
    parts = [
        f"<p>Test {esc(mname)} of each subgroup with its 95% bootstrap CI (resampled within the "
        f"subgroup's classes). Subgroups under {esc(fr.get('min_size'))} test cases are starred "
        "and hollow: shown, but left out of the gaps and the fairlearn differences. The "
        "equalised-odds difference is the largest between-subgroup difference in true- or "
        "false-positive rate, the demographic-parity difference that in the share predicted "
        "positive (0 is parity), from the predicted classes as written in the predictions.</p>"
    ]
    chart_cols = {
        col: {
            i: entries[i]["columns"][col]
            for i in ids
            if "groups" in entries[i]["columns"].get(col, {})
        }
        for col in first["columns"]
    }
    chart_cols = {k: v for k, v in chart_cols.items() if v}
    if chart_cols:
        parts.append(
            figure(
                plots.subgroup_chart(
                    chart_cols, {i: c.name(i) for i in ids}, c.colors, metric, mname
                ),
                f"{mname} per subgroup; lines are 95% CIs.",
            )
        )
    for col in first["columns"]:
        parts.append(f"<h3>{esc(col)}</h3>")
        parts.append(_table(c, entries, ids, col, metric))
    return "".join(parts)


def _table(c: Context, entries: dict[str, Any], ids: list[str], col: str, metric: str) -> str:
    tables = {i: entries[i]["columns"].get(col, {}) for i in ids}
    missing = next((t["why"] for t in tables.values() if t.get("why")), None)
    if missing:
        return note(missing)
    base = tables[ids[0]]
    head = "".join(f"<th>{esc(c.name(i))}</th>" for i in ids)
    rows = []
    for k, r in enumerate(base["groups"]):
        counts = ", ".join(f"{esc(n)} {esc(cl)}" for cl, n in r["classes"].items())
        flag = ' <small class="warn">under min_size</small>' if r["small"] else ""
        cells = []
        for i in ids:
            rr = tables[i]["groups"][k]
            v = rr["metrics"].get(metric)
            cells.append(
                f"<td>{fmt_ci(v)}</td>"
                if v
                else f'<td><small class="warn">undefined: {esc(rr["undefined"].get(metric, ""))}</small></td>'
            )
        rows.append(
            f'<tr><td class="l">{esc(r["group"])}{flag}</td><td>{r["n"]}<span class="pc"> '
            f"({counts})</span></td>{''.join(cells)}</tr>"
        )
    summary = []
    for i in ids:
        t = tables[i]
        gap = (t.get("gaps") or {}).get(metric) or {}
        g = (
            f"largest {esc(metric_name(metric))} gap {fmt(gap['value'])} "
            f"({esc(gap['best'])} vs {esc(gap['worst'])})"
            if gap.get("value") is not None
            else f"gap: {esc(gap.get('why', 'n/a'))}"
        )
        eo, dp = t.get("equalized_odds_difference"), t.get("demographic_parity_difference")
        summary.append(
            f"<li><b>{esc(c.name(i))}</b>: {g}; equalised-odds difference "
            f"{fmt((eo or {}).get('value'))}, demographic-parity difference "
            f"{fmt((dp or {}).get('value'))}"
            + (f" <i>({esc(t['fairlearn_note'])})</i>" if t.get("fairlearn_note") else "")
            + "</li>"
        )
    return (
        f'<div class="tw"><table class="narrow"><tr><th class="l">subgroup</th><th>test cases</th>'
        f'{head}</tr>{"".join(rows)}</table></div><ul class="facts">{"".join(summary)}</ul>'
    )
