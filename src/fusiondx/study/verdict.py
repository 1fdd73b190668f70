"""The study's answer in words: does fusion help here, or does something simpler do as well?

"Fusion helps" only when the winner (the fusion chosen on validation) beats both the best
single modality and the best reference model (each also chosen on validation) with a paired CI
that excludes zero. A shortcut probe is named when it reaches the winner's CI while clearly
above chance, or beats the best single modality: then what the models gain may be the pattern. Otherwise the answer names the simpler model that does as well (or better).
The best single modality and the best reference *on test* are sensitivity lines, never the
headline: picking a rival on test would flatter it, as picking it on a small validation split
can flatter fusion. Shortcut probes within the winner's CI and entries that did
not learn are named in plain words. The CLI and the report both print this, word for word.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

# Lines of the verdict that warn (shown first and in red): shortcuts and models that did not
# learn, or not to the end.
WARNINGS = ("Shortcut", "Did not learn", "Cut short", "Kept its first epoch")
# What a model that learned nothing scores; a probe counts as a shortcut only above it.
CHANCE = {"auroc": 0.5, "c_index": 0.5, "r2": 0.0}
PROBE_MEANING = {
    "presence": "which inputs each case has (what was measured, not what it showed)",
    "metadata": "the acquisition and bookkeeping columns",
}


def decide(
    by_id: dict[str, dict[str, Any]],
    metric: str,
    winner: str,
    best_single: str,
    best_reference: str | None,
    comparisons: dict[str, Any],
    absent: list[dict[str, str]],
    flags: dict[str, list[str]],
) -> dict[str, Any]:
    """``{"fusion_helps", "simpler", "tone", "headline", "lines", "shortcuts"}``.

    ``comparisons`` holds the paired differences winner minus ``single``, ``reference`` (or
    None) and ``single_on_test`` (or None); ``flags`` per entry id, the reasons it did not learn.
    """
    mn = metric.upper() if len(metric) <= 5 else metric
    w, s = by_id[winner], by_id[best_single]
    r = by_id.get(best_reference) if best_reference else None
    ds, dr = comparisons["single"], comparisons.get("reference")
    beats_s, beats_r = _above(ds), r is None or _above(dr)
    one = len(w.get("modalities") or ()) < 2
    if one:
        # One modality: the 'fusion' is the single model again; only the reference is a rival.
        tone, simpler = (
            ("good", None) if r is not None and beats_r else ("meh", r["id"] if r else None)
        )
        vs = (
            ""
            if r is None
            else (
                f" vs {_ci(r, metric)} for the best reference model ({r['label']}); "
                f"network minus it: {_diff(dr)}"
            )
        )
        headline = (
            f"Nothing to fuse (one modality): {s['label']} reaches {mn} {_ci(w, metric)}{vs}."
        )
        beats_s = False
    elif beats_s and beats_r:
        tone, simpler = "good", None
        above = f"the best single modality ({s['label']}) by {_diff(ds)}"
        above += f" and the best reference model ({r['label']}) by {_diff(dr)}" if r else ""
        headline = f"Fusion helps: {w['label']} reaches {mn} {_ci(w, metric)}, above {above}."
    else:
        # The simpler model to name: one that is better than fusion (the clearest), else the
        # reference when fusion does not beat it, else the best single modality.
        rivals: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (x, d) for x, d in ((r, dr), (s, ds)) if x is not None and d is not None
        ]
        better = [(x, d) for x, d in rivals if _finite(d.get("high")) and d["high"] < 0]
        other: dict[str, Any]
        d: dict[str, Any] | None
        if better:
            other, d = min(better, key=lambda xd: xd[1]["difference"])
        else:
            other, d = (r, dr) if r is not None and not beats_r else (s, ds)
        simpler = other["id"]
        worse = bool(better)
        tone = "bad" if worse else "meh"
        verb = "is better" if worse else "does as well"
        headline = (
            f"A simpler model {verb}: {other['label']} reaches {mn} {_ci(other, metric)} vs "
            f"{_ci(w, metric)} for the fusion chosen on validation ({w['label']}); "
            f"fusion minus it: {_diff(d)}."
        )
    lines = (
        [] if one else ["A" + _line("the best single modality (chosen on validation)", s, ds)[1:]]
    )
    if r is not None:
        lines.append("A" + _line("the best reference model (chosen on validation)", r, dr)[1:])
    elif absent:
        lines.append(
            "No reference model could run for this task: "
            + "; ".join(f"{a['label']}: {a['why']}" for a in absent)
            + "."
        )
    for key, what in (
        ("single_on_test", "single modality"),
        ("reference_on_test", "reference model"),
    ):
        d = comparisons.get(key)
        if d is not None:
            lines.append("Sensitivity: " + _line(f"the best {what} on test", by_id[d["b"]], d))
    shortcuts = []
    for eid, e in by_id.items():
        if e.get("kind") != "probe":
            continue
        p, wt = e["test"][metric], w["test"][metric]
        if not (_finite(p["mean"]) and _finite(wt["low"])):
            continue
        above_chance = metric not in CHANCE or (_finite(p["low"]) and p["low"] > CHANCE[metric])
        if p["mean"] >= wt["mean"] or (p["mean"] >= wt["low"] and above_chance):
            where = f"within the winner's 95% CI [{wt['low']:.3f}, {wt['high']:.3f}]"
        elif above_chance and p["mean"] >= s["test"][metric]["mean"]:
            # Better than any modality's content alone: a fused model can beat the single
            # modalities through this pattern, even where it stays outside the winner's CI.
            where = f"above the best single modality ({s['label']}, {_ci(s, metric)})"
        else:
            continue
        meaning = PROBE_MEANING.get(e.get("fusion", ""), "what this probe sees")
        shortcuts.append(eid)
        lines.insert(
            0,
            f"Shortcut warning: a model that sees only {meaning} reaches {mn} "
            f"{_ci(e, metric)}, {where}: the models may be reading that rather than "
            "the disease.",
        )
    for eid, why in flags.items():
        if eid not in by_id:
            continue
        label = by_id[eid]["label"]
        for reason in why:
            if reason.startswith("still improving"):
                lines.append(
                    f"Cut short: {label} ({reason}); more epochs may change the comparison."
                )
            elif reason.startswith("best epoch 0"):
                lines.append(f"Kept its first epoch: {label} ({reason}); check that it learned.")
            else:
                lines.append(f"Did not learn: {label} ({reason}).")
    return {
        "fusion_helps": bool(beats_s and beats_r),
        "simpler": simpler,
        "tone": tone,
        "headline": headline,
        "lines": lines,
        "shortcuts": shortcuts,
    }


def _above(d: dict[str, Any] | None) -> bool:
    return d is not None and _finite(d.get("low")) and d["low"] > 0


def _line(what: str, e: dict[str, Any], d: dict[str, Any] | None) -> str:
    if d is None:
        return f"against {what}, {e['label']}: no paired comparison."
    return f"against {what}, {e['label']}: fusion minus it {_diff(d)}{_p(d)}."


def _diff(d: dict[str, Any] | None) -> str:
    if d is None:
        return "no paired comparison"
    return f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def _p(d: dict[str, Any]) -> str:
    p = d.get("p_value")
    if not _finite(p):
        return ""
    nb = d.get("n_boot") or 0
    if nb and p <= 1.0 / nb + 1e-12:
        return f", p ≤ {1.0 / nb:.2g}"
    return f", p = {p:.3f}" if p < 0.01 else f", p = {p:.2f}"


def _ci(e: dict[str, Any], metric: str) -> str:
    m = e["test"][metric]
    if not _finite(m["low"]):
        return f"{m['mean']:.3f}"
    return f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and math.isfinite(x)
