"""Every result the README and the docs show, rendered from its results file, never typed.

A documented study leaves a summary in ``docs/results/<name>.json`` (written by
``python -m bench.results``, see there for the command of each); the docs hold generated blocks::

    <!-- results:demo_table -->
    ...generated Markdown...
    <!-- /results:demo_table -->

``python -m bench.documented`` rewrites every block from the committed summaries (seconds, no
training); ``tests/test_documented_results.py`` fails when a block differs from what its
summary renders, so a number in the docs cannot drift from the run that produced it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARIES = ROOT / "docs" / "results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"<!-- results:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S
)
NAMES = {
    "auroc": "AUROC",
    "iou": "IoU",
    "dice_lesion": "Dice (lesion cases)",
    "bleu4": "BLEU-4",
    "rouge_l": "ROUGE-L",
    "c_index": "C-index",
    "r2": "R²",
    "f1": "F1",
    "auprc": "AUPRC",
}


# --------------------------------------------------------------------------------- summaries


def summarise(
    results: dict[str, Any],
    *,
    name: str,
    command: str,
    minutes: float,
    machine: str,
    extra_metrics: tuple[str, ...] = ("f1",),
) -> dict[str, Any]:
    """What the docs need of a study's results.json (kept small enough to commit)."""
    study = results["study"]
    metric = study["primary_metric"]
    keep = [metric, *[m for m in extra_metrics if m != metric]]

    def ci(d: dict[str, Any] | None) -> dict[str, float] | None:
        return None if not d else {k: d.get(k) for k in ("mean", "low", "high")}

    entries = [
        {
            "id": e["id"],
            "label": e["label"],
            "kind": e["kind"],
            "modalities": e["modalities"],
            "n_parameters": e.get("n_parameters"),
            "flags": e.get("flags") or [],
            "val": (e.get("val") or {}).get(metric),
            "test": {m: ci(e["test"].get(m)) for m in keep if m in e["test"]},
        }
        for e in results["entries"]
    ]
    comps = {
        k: (
            None
            if v is None
            else {x: v.get(x) for x in ("a", "b", "difference", "low", "high", "p_value")}
        )
        for k, v in (results.get("comparisons") or {}).items()
    }
    return {
        "name": name,
        "command": command,
        "created": study["created"],
        "minutes": round(minutes, 1),
        "machine": machine,
        "study": {
            k: study.get(k)
            for k in (
                "name",
                "task",
                "task_type",
                "primary_metric",
                "seeds",
                "folds",
                "n_test",
                "n_boot",
                "threshold",
            )
        },
        "entries": entries,
        "winner": results["winner"],
        "best_single": results["best_single"],
        "best_reference": results.get("best_reference"),
        "best_single_on_test": results.get("best_single_on_test"),
        "comparisons": comps,
        "verdict": results.get("verdict"),
        "references_absent": results.get("references_absent") or [],
        "ablation": _ablation(results),
    }


def _ablation(results: dict[str, Any]) -> dict[str, float] | None:
    ab = results.get("ablation")
    if not ab:
        return None
    full = ab["full"]["mean"]
    return {m: v["mean"] - full for m, v in ab["without"].items()}


def load(name: str) -> dict[str, Any]:
    path = SUMMARIES / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m bench.results --only {name}`")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------- renderers


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.{nd}f}"


def _ci(d: dict[str, Any] | None) -> str:
    if not d or not isinstance(d.get("mean"), (int, float)):
        return "n/a"
    if not isinstance(d.get("low"), (int, float)):
        return _f(d["mean"])
    return f"{_f(d['mean'])} [{_f(d['low'])}, {_f(d['high'])}]"


def _params(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "–"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def replicates(s: dict[str, Any]) -> str:
    st = s["study"]
    if st.get("folds"):
        return f"{st['folds']} folds, out-of-fold predictions of all {st['n_test']} cases pooled"
    seeds = st.get("seeds") or []
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, the same {st['n_test']} test cases for every model"


def table(s: dict[str, Any], *, kinds: tuple[str, ...] | None = None) -> str:
    """Every entry, best first on the test metric; ★ winner (chosen on validation), ⚠ did not learn."""
    metric = s["study"]["primary_metric"]
    extra = [m for m in ("f1",) if any(m in e["test"] for e in s["entries"]) and m != metric]
    head = [
        "model",
        "kind",
        f"{NAMES.get(metric, metric)} [95% CI]",
        *(NAMES.get(m, m) for m in extra),
        "parameters",
    ]
    rows = [e for e in s["entries"] if kinds is None or e["kind"] in kinds]
    rows.sort(
        key=lambda e: -(e["test"][metric]["mean"] if _finite(e["test"][metric]["mean"]) else -1e9)
    )
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * (len(extra) + 1)]
    for e in rows:
        label = e["label"] + (" ★" if e["id"] == s["winner"] else "") + (" ⚠" if e["flags"] else "")
        cells = [
            f"**{label}**" if e["id"] == s["winner"] else label,
            e["kind"],
            _ci(e["test"][metric]),
            *(_f((e["test"].get(m) or {}).get("mean")) for m in extra),
            _params(e.get("n_parameters")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"⚠ {e['label']}: {'; '.join(e['flags'])}." for e in rows if e["flags"]]
    out = lines + ([""] + notes if notes else [])
    return "\n".join(out + (["", _threshold_note(s)] if extra else []))


def _threshold_note(s: dict[str, Any]) -> str:
    """Which decision threshold the F1 column uses: summaries written before `fit` chose one on
    validation (they have no threshold) were scored at 0.5, and say so rather than pass for
    today's numbers."""
    said = s["study"].get("threshold")
    if said:
        return str(said)
    return (
        "F1 at the fixed threshold 0.5: measured before `fit` chose each run's threshold on "
        "validation (docs/trust.md); `make results` re-measures it. AUROC does not depend on it."
    )


def verdict(s: dict[str, Any]) -> str:
    v = s["verdict"]
    return "\n".join([f"**{v['headline']}**", "", *[f"- {x}" for x in v["lines"]]])


def provenance(s: dict[str, Any]) -> str:
    return (
        f"`{s['command']}` — {s['created'][:10]}, {s['minutes']:.0f} min on {s['machine']}; "
        f"{replicates(s)}, 95% bootstrap CIs."
    )


def study_block(s: dict[str, Any]) -> str:
    return "\n\n".join([provenance(s), table(s), verdict(s)])


def entry(s: dict[str, Any], eid: str | None) -> dict[str, Any] | None:
    return next((e for e in s["entries"] if e["id"] == eid), None)


def overview(summaries: list[tuple[str, dict[str, Any]]]) -> str:
    """One row per study: the fusion chosen on validation, the best single modality and the best
    reference (both chosen on validation), the strongest probe, and the verdict's first words."""
    head = (
        "| data | metric | fusion (chosen on val) | best single (val) | best reference (val) | "
        "fusion − reference | strongest probe | verdict |"
    )
    lines = [head, "|---|---|---|---|---|---:|---|---|"]
    for title, s in summaries:
        metric = s["study"]["primary_metric"]

        def cell(eid: str | None, s: dict[str, Any] = s, metric: str = metric) -> str:
            e = entry(s, eid)
            return "–" if e is None else f"{e['label']}: {_ci(e['test'][metric])}"

        probes = [e for e in s["entries"] if e["kind"] == "probe"]
        probe = max(probes, key=lambda e: e["test"][metric]["mean"] or -1, default=None)
        pname = None if probe is None else probe["id"].removeprefix("probe_") + " probe"
        pcell = (
            "–"
            if probe is None
            else f"{pname}: {_ci(probe['test'][metric])}"
            + (" **shortcut**" if probe["id"] in s["verdict"]["shortcuts"] else "")
        )
        words = s["verdict"]["headline"].split(":")[0]
        d = (s.get("comparisons") or {}).get("reference")
        diff = "–" if not d else f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        lines.append(
            f"| {title} | {NAMES.get(metric, metric)} | {cell(s['winner'])} | {cell(s['best_single'])} | "
            f"{cell(s['best_reference'])} | {diff} | {pcell} | {words} |"
        )
    return "\n".join(lines)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# --------------------------------------------------------------------------------- the blocks

REAL = [
    ("PTB-XL 500, ECG + metadata + report", "ptbxl"),
    ("PTB-XL 500, ECG + metadata", "ptbxl_no_report"),
    ("ChestX-ray14 1000, image + demographics", "nih_cxr"),
    ("MIMIC-IV demo, labs + admission + history", "mimic_iv"),
    ("PneumoniaMNIST, image", "pneumoniamnist"),
]
COHORT = [
    ("built-in cohort (demo)", "demo"),
    ("built-in, only the image informative", "cohort_null"),
    ("built-in, planted presence shortcut", "cohort_shortcut"),
]
TASKS = [
    ("lesion boxes", "localization"),
    ("findings text", "generation"),
    ("lesion masks", "segmentation"),
    ("survival", "survival"),
]


def _overview(items: list[tuple[str, str]]) -> Callable[[], str]:
    return lambda: overview([(t, load(n)) for t, n in items])


def _study(name: str) -> Callable[[], str]:
    return lambda: study_block(load(name))


def _small_data() -> str:
    from bench.small_data import render

    return render(load("small_data"))


def _representation() -> str:
    from bench.representation import render

    return render(load("representation"))


def _missing_training() -> str:
    from bench.missing import render

    return render(load("missing_training"))


def _oracle() -> str:
    from bench.results import render_oracle

    return render_oracle(load("cohort_oracle"))


BLOCKS: dict[str, Callable[[], str]] = {
    "demo": _study("demo"),
    "cohorts_overview": _overview(COHORT),
    "cohort_null": _study("cohort_null"),
    "cohort_shortcut": _study("cohort_shortcut"),
    "real_overview": _overview(REAL),
    "tasks_overview": _overview(TASKS),
    **{n: _study(n) for _, n in REAL + TASKS},
    "small_data": _small_data,
    "cohort_oracle": _oracle,
    "representation": _representation,
    "missing_training": _missing_training,
}


def render_doc(text: str, missing: list[str] | None = None) -> str:
    """The doc with every generated block rewritten from its summary; a block whose summary is
    not there yet is left as it is (and named in ``missing``)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise KeyError(f"no renderer for the results block '{name}'")
        try:
            body = BLOCKS[name]().strip()
        except FileNotFoundError:
            if missing is None:
                raise
            missing.append(name)
            return m.group(0)
        return f"<!-- results:{name} -->\n{body}\n<!-- /results:{name} -->"

    return BLOCK.sub(sub, text)


def main() -> int:
    changed, missing = [], []
    for doc in DOCS:
        text = doc.read_text()
        new = render_doc(text, missing)
        if new != text:
            doc.write_text(new)
            changed.append(doc)
    print(
        "rewrote "
        + (
            ", ".join(str(p.relative_to(ROOT)) for p in changed)
            if changed
            else "nothing (all blocks current)"
        )
    )
    if missing:
        print(
            f"left as they were (no results file yet): {', '.join(dict.fromkeys(missing))}; "
            "`python -m bench.results --only <name>` makes one"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
