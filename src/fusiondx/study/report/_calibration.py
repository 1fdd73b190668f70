"""The report's "Calibration and triage" section: ECE and Brier score before and after
temperature scaling per classifier entry, the winner's reliability diagram before and after,
conformal coverage and set size per class, and the selective-prediction curve."""

from __future__ import annotations

from typing import Any

from fusiondx.study import plots
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import fmt

_BEFORE, _AFTER = "#999999", "#0072B2"


def _pair(e: dict[str, Any], key: str) -> str:
    b, a = (e.get("before") or {}).get(key), (e.get("after") or {}).get(key)
    return f"<td>{fmt(b)}</td><td><b>{fmt(a)}</b></td>"


def calibration_section(c: Context) -> str:
    r = c.r.get("calibration")
    if not r:
        return note(
            "No calibration results: the task is not a classification, or its runs were "
            "trained without the post-hoc layer (posthoc.json)."
        )
    parts = [
        "<p>Every run fitted temperature scaling (vector scaling for multiclass tasks), its "
        "decision threshold and its conformal prediction sets on the validation cases; the "
        f"numbers below are on the test cases. Calibration compares {esc(r.get('measures'))}, "
        f"ECE over {int(r.get('bins', 10))} equal-width bins (fixed) or equal-mass bins "
        "(adaptive); lower is better.</p>"
    ]
    rows = []
    for e in r.get("entries") or []:
        i = e.get("id")
        temp = e.get("temperature")
        shown = fmt(temp[0], 2) if isinstance(temp, list) and len(temp) == 1 else e.get("method")
        rows.append(
            f'<tr class="{"win" if i == c.winner else ""}"><td class="l">'
            f"{esc(c.label.get(i, e.get('label', i)))}</td><td>{esc(shown)}</td>"
            f"{_pair(e, 'ece')}{_pair(e, 'ece_adaptive')}{_pair(e, 'brier')}</tr>"
        )
    parts.append(
        '<div class="tw"><table><tr><th class="l">Entry</th><th>Temperature</th>'
        "<th>ECE before</th><th>ECE after</th><th>Adaptive ECE before</th>"
        "<th>Adaptive ECE after</th><th>Brier before</th><th>Brier after</th></tr>"
        f"{''.join(rows)}</table></div>"
    )
    w = r.get("winner") or {}
    rel = w.get("reliability")
    if rel:
        parts.append(
            figure(
                plots.calibration_chart(
                    [
                        ("before scaling", _BEFORE, rel["before"]),
                        ("after scaling", _AFTER, rel["after"]),
                    ]
                ),
                f"Reliability diagram of {c.name(w.get('entry', c.winner or ''))} on test, "
                "before and after temperature scaling (first replicate).",
            )
        )
    parts.append(_conformal(c, r))
    if w.get("selective"):
        parts.append(
            figure(
                plots.selective_chart([(c.name(w["entry"]), _AFTER, w["selective"])]),
                "Accuracy of the test cases kept when the least certain (lowest highest-class "
                "probability) are referred to an expert first.",
            )
        )
    return "".join(parts)


def _conformal(c: Context, r: dict[str, Any]) -> str:
    with_sets = [e for e in r.get("entries") or [] if e.get("conformal")]
    if not with_sets:
        return note("No conformal prediction sets (conformal: null, or a multilabel task).")
    classes = list(with_sets[0]["conformal"].get("per_class") or {})
    head = "".join(f"<th>{esc(k)}: coverage / size</th>" for k in classes)
    rows = []
    for e in with_sets:
        s = e["conformal"]
        per = s.get("per_class") or {}
        cells = "".join(
            f"<td>{fmt((per.get(k) or {}).get('coverage'))} / "
            f"{fmt((per.get(k) or {}).get('mean_set_size'), 2)}</td>"
            for k in classes
        )
        rows.append(
            f'<tr class="{"win" if e.get("id") == c.winner else ""}"><td class="l">'
            f"{esc(c.label.get(e.get('id'), e.get('id')))}</td><td>{fmt(s.get('nominal'), 2)}</td>"
            f"<td><b>{fmt(s.get('coverage'))}</b></td><td>{fmt(s.get('mean_set_size'), 2)}</td>"
            f"<td>{fmt(s.get('referred'))}</td>{cells}</tr>"
        )
    return (
        "<h3>Conformal prediction sets</h3>"
        '<div class="tw"><table><tr><th class="l">Entry</th><th>Nominal</th><th>Coverage</th>'
        f"<th>Mean set size</th><th>Referred</th>{head}</tr>{''.join(rows)}</table></div>"
        + note(
            "Coverage: share of test cases whose set holds the true class; a case is referred "
            "when its set is not the predicted class alone."
        )
    )
