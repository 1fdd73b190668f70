"""The report's summary section: the verdict in words, then what was compared and how."""

from __future__ import annotations

import math

from fusiondx.study import plots
from fusiondx.study.plots import num
from fusiondx.study.report._context import Context, esc, note
from fusiondx.study.report._format import fmt, fmt_p, metric_name, replicates
from fusiondx.study.verdict import WARNINGS


def summary_section(c: Context) -> str:
    v = c.r.get("verdict")
    if not isinstance(v, dict):
        return note("No verdict in the results (written by an older FusionDx?); rerun the study.")
    lines = [str(x) for x in v.get("lines") or []]
    warn = [x for x in lines if x.startswith(WARNINGS)]
    rest = [x for x in lines if x not in warn]
    alert = "".join(f'<div class="verdict bad">{esc(x)}</div>' for x in warn)
    facts = [esc(x) for x in rest] + _facts(c)
    items = "".join(f"<li>{f}</li>" for f in facts)
    return (
        f'{alert}<div class="verdict {esc(v.get("tone", "meh"))}"><b>{esc(v.get("headline", ""))}</b>'
        f'</div><ul class="facts">{items}</ul>'
    )


def _facts(c: Context) -> list[str]:
    """What was compared, how, and what the ablation says."""
    cmp_ = c.r.get("comparison") or {}
    kinds = [e.get("kind") for e in c.entries]
    n_test = c.study.get("n_test")
    if n_test is None:
        n_test = ((c.r.get("data") or {}).get("splits") or {}).get("test", {}).get("cases")
    counts = ", ".join(
        f"{kinds.count(k)} {name}"
        for k, name in (
            ("single", "single-modality baselines"),
            ("fusion", "fusion strategies"),
            ("tuned", "tuned strategies"),
            ("ablation", "ablations"),
            ("reference", "reference models"),
            ("probe", "shortcut probes"),
        )
        if kinds.count(k)
    )
    facts = [
        f"{len(c.entries)} models compared on test {esc(c.pname)}: {esc(counts)}; every neural "
        f"model trained over {esc(replicates(c.study))}, the references fitted once per split; "
        f"95% CIs from {esc(c.study.get('n_boot', 'n/a'))} bootstrap resamples of the "
        f"{esc(n_test if n_test is not None else 'n/a')} test cases."
    ]
    if c.entries and c.entries[0].get("id") != c.winner:
        facts.append(
            f"On test, <b>{esc(c.label[c.entries[0]['id']])}</b> ranks first; the winner "
            "is picked on validation to keep the test set untouched."
        )
    method = str(cmp_.get("method") or "")
    if method:
        facts.append(f"Differences and p-values: {esc(method)}.")
    dl = cmp_.get("delong")
    if isinstance(dl, dict):
        facts.append(
            f"DeLong test against the best single modality: z = {fmt(dl.get('z'), 2)}, "
            f"{fmt_p(dl.get('p_value'))}."
        )
    ab = c.r.get("ablation") or {}
    fm = num((ab.get("full") or {}).get("mean"))
    drops = {k: num(v.get("mean")) - fm for k, v in (ab.get("without") or {}).items()}
    drops = {k: v for k, v in drops.items() if not math.isnan(v)}
    if drops:
        worst = min(drops, key=drops.__getitem__)
        least = max(drops, key=drops.__getitem__)
        who = c.label.get(ab.get("entry"), "the winner")
        facts.append(
            f"Leaving out <b>{esc(worst)}</b> changes {esc(who)}'s "
            f"{esc(metric_name(ab.get('metric') or c.pm))} the most "
            f"({plots.signed(drops[worst])}); leaving out {esc(least)} the least "
            f"({plots.signed(drops[least])})."
        )
    absent = c.r.get("references_absent") or []
    if absent:
        facts.append(
            "Not run: " + esc("; ".join(f"{a['label']} ({a['why']})" for a in absent)) + "."
        )
    return facts
