"""The report section "Which modality drives the prediction"."""

from __future__ import annotations

from fusiondx.study.plots._explain import drivers_chart
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import metric_name


def explain_section(c: Context) -> str:
    ex = c.r.get("explain")
    if not isinstance(ex, dict) or not ex.get("entries"):
        return note(
            "No modality explanations in this study (study.explain is off, or the task is not a "
            "classification); section skipped."
        )
    entries = {i: ex["entries"][i] for i in c.order(ex["entries"])}
    metric = metric_name(ex.get("metric") or c.pm)
    rows = []
    for eid, e in entries.items():
        perm = e.get("permutation") or {}
        share = (e.get("metric_share") or {}).get("share") or {}
        for m, v in (e.get("mean_abs") or {}).items():
            p = perm.get(m) or {}
            rows.append(
                f"<tr><td class=l>{esc(c.name(eid))}</td><td class=l>{esc(m)}</td>"
                f"<td>{v:.3f}</td><td>{(e.get('mean') or {}).get(m, float('nan')):+.3f}</td>"
                f"<td>{share.get(m, float('nan')):+.3f}</td>"
                f"<td>{p.get('mean', float('nan')):+.3f}"
                f"<span class=ci>[{p.get('low', float('nan')):+.3f}, {p.get('high', float('nan')):+.3f}]</span></td>"
                f"<td>{(e.get('present') or {}).get(m, float('nan')):.0%}</td></tr>"
            )
    table = (
        '<div class="tw"><table class="narrow"><tr><th class=l>model</th><th class=l>modality</th>'
        f"<th>mean |Shapley|</th><th>mean Shapley</th><th>share of {esc(metric)}</th>"
        f"<th>{esc(metric)} drop when shuffled</th><th>present</th></tr>{''.join(rows)}</table></div>"
    )
    caption = (
        f"Test split, the first replicate's model. Left: exact Shapley values over the modalities "
        f"of the {ex.get('explained', 'explained probability')} (a modality absent = masked), "
        f"averaged in magnitude over the test cases. Right: the drop in {metric} when that "
        f"modality is shuffled across test cases ({ex.get('repeats')} shuffles; bars: 2.5-97.5% "
        f"of the shuffles). Table, share of {metric}: exact Shapley values of the test {metric} "
        "itself over the modalities (a coalition's value: the metric with only its modalities "
        f"allowed); they sum to the model's {metric} minus that of a constant prediction. A "
        "modality that moves probabilities (large |Shapley|) but earns no share is noise the "
        "model leans on."
    )
    return figure(drivers_chart(entries, {i: c.name(i) for i in entries}, metric), caption) + table
