"""The report's ranked comparison: the chart of every entry and the table of all its metrics."""

from __future__ import annotations

from fusiondx.study import plots
from fusiondx.study.plots import KIND_COLORS
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import (
    fmt,
    fmt_ci,
    fmt_count,
    metric_name,
    pooling,
    selection,
    stat,
    table_metrics,
)

KIND_LABEL = {
    "single": "single",
    "fusion": "fusion",
    "ablation": "ablation",
    "tuned": "tuned",
    "reference": "reference",
    "probe": "probe",
}


def _kind_badge(kind: str) -> str:
    color = KIND_COLORS.get(kind, "#7b8794")
    return f'<span class="kind" style="background:{color}">{esc(KIND_LABEL.get(kind, kind))}</span>'


def _ci_cell(d: dict[str, float]) -> str:
    s = fmt_ci(d)
    head, _, ci = s.partition(" ")
    return f"{head} <span class=ci>{ci}</span>" if ci else head


def ranking_section(c: Context) -> str:
    rows = [
        {
            "id": e.get("id"),
            "label": c.label.get(e.get("id"), ""),
            "kind": e.get("kind", ""),
            **stat(e, c.pm),
        }
        for e in c.entries
    ]
    parts = (
        [
            figure(
                plots.ranked_chart(
                    rows, c.pname, c.winner, c.best, pooling(c.study), c.r.get("best_reference")
                ),
                f"Test {c.pname}, {pooling(c.study)}, with 95% bootstrap CI; best first.",
            )
        ]
        if rows
        else [note("No entries in the results.")]
    )
    ms = table_metrics(c.r)
    head = "".join(
        f'<th class="{"pm" if m == c.pm else ""}">{esc(metric_name(m))}</th>' for m in ms
    )
    trs = []
    for rank, e in enumerate(c.entries, 1):
        i = e.get("id")
        cls = "win" if i == c.winner else "best" if i in (c.best, c.r.get("best_reference")) else ""
        mods = ", ".join(map(str, e.get("modalities") or []))
        fus = e.get("fusion") if e.get("fusion") != c.label.get(i) else None
        sub = " · ".join(str(x) for x in (fus, e.get("level"), mods) if x)
        flags = e.get("flags") or []
        warn = f'<small class="warn">⚠ {esc("; ".join(flags))}</small>' if flags else ""
        cells = "".join(
            f'<td class="{"pm" if m == c.pm else ""}">{_ci_cell(stat(e, m))}</td>' for m in ms
        )
        trs.append(
            f'<tr class="{cls}"><td>{rank}</td><td class="l"><b>{esc(c.label.get(i, i))}'
            f"</b>{' ★' if i == c.winner else ''}<small>{esc(sub)}</small>{warn}</td>"
            f'<td class="l">{_kind_badge(e.get("kind", ""))}</td>{cells}'
            f"<td>{fmt_count(e.get('n_parameters'))}</td>"
            f"<td>{fmt_count(e.get('flops_per_case'), 'FLOP')}</td>"
            f"<td>{fmt(e.get('train_seconds'), 1)}</td></tr>"
        )
    parts.append(
        f'<div class="tw"><table><tr><th>#</th><th class="l">Entry</th>'
        f'<th class="l">Kind</th>{head}<th>Parameters</th><th>FLOPs / case</th>'
        f"<th>Train time (s)</th></tr>{''.join(trs)}</table></div>"
    )
    parts.append(
        note(
            f"★ winner (chosen on {selection(c.study)}); highlighted in yellow, "
            "the best single modality and the best reference in blue. Reference rows are scikit-learn models "
            "fitted on the same training cases and tuned on the same validation cases; "
            "probes see only what should not matter; ⚠ marks a model that did not learn."
        )
    )
    if c.study.get("threshold"):
        parts.append(note(str(c.study["threshold"])))
    return "".join(parts)
