"""The study report: one self-contained HTML page, plus the ranked table as Markdown and CSV.

``write_report(results, out)`` renders the ``results`` dict of a study (see the runner for the
schema) into a single HTML file: inline CSS, every plot a base64 PNG, no script and no external
resource, so it can be mailed or archived as is. Optional parts of ``results`` (curves, confusion
matrix, ablation, robustness, training curves, data summary) that are absent are skipped with a
one-line note. ``write_tables(results, out_dir)`` writes ``table.md`` and ``table.csv``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import importlib.metadata
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusiondx.registry import TASK_TYPES
from fusiondx.study import plots
from fusiondx.study.plots import KIND_COLORS, PALETTE, num
from fusiondx.study.verdict import WARNINGS
from fusiondx.tasks import task_type

NAMES = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "f1": "F1",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "sensitivity": "Sensitivity",
    "balanced_accuracy": "Balanced accuracy",
    "iou": "IoU",
    "detection_rate": "Detection rate (IoU ≥ 0.5)",
    "center_error": "Centre error",
    "dice": "Dice",
    "dice_lesion": "Dice (lesion cases)",
    "iou_lesion": "IoU (lesion cases)",
    "bleu1": "BLEU-1",
    "bleu2": "BLEU-2",
    "bleu3": "BLEU-3",
    "bleu4": "BLEU-4",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "meteor": "METEOR",
    "c_index": "C-index",
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
}
SPLITS = {"val": "validation", "train": "training", "test": "test"}
KIND_LABEL = {
    "single": "single",
    "fusion": "fusion",
    "ablation": "ablation",
    "tuned": "tuned",
    "reference": "reference",
    "probe": "probe",
}
CSS = """
body{margin:0;background:#f3f4f6;color:#1f2933;font:16px/1.55 -apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
main{max-width:1100px;margin:24px auto;background:#fff;padding:28px 40px 20px;border-radius:10px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:28px;margin:0 0 4px}h2{font-size:21px;margin:40px 0 10px;padding-bottom:6px;
border-bottom:2px solid #e5e7eb}h3{font-size:17px;margin:24px 0 6px}
.sub{color:#616e7c;margin:0 0 14px}nav{font-size:14px;margin-bottom:18px}
nav a{color:#3559a8;text-decoration:none;margin-right:16px;white-space:nowrap;line-height:1.9}
.verdict{border-left:6px solid;padding:14px 18px;border-radius:6px;font-size:18px;margin:8px 0 12px}
.good{border-color:#1a7f4b;background:#eaf7ef}.meh{border-color:#c58a00;background:#fff7e0}
.bad{border-color:#b42318;background:#fdecea}
ul.facts{margin:6px 0 0;padding-left:22px;color:#323f4b}ul.facts li{margin:3px 0}
img{max-width:100%;height:auto;display:block;margin:10px auto}
figure{margin:14px 0}figcaption{color:#616e7c;font-size:14px;text-align:center}
.tw{overflow-x:auto}table{border-collapse:collapse;font-size:13.5px;margin:8px 0;width:100%;
font-variant-numeric:tabular-nums}
th,td{padding:6px 6px;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
th{background:#f8f9fb;font-weight:600;color:#323f4b;border-bottom:2px solid #d2d6dc}
td.l,th.l{text-align:left}small.warn{color:#b42318;display:block}td small,.ci{display:block;color:#7b8794;font-size:12px}
.ci{white-space:nowrap}td.l small{max-width:220px}td .pc{color:#7b8794;font-size:12px}
tr.win td{background:#fff6d9}tr.best td{background:#eef4ff}th.pm,td.pm{font-weight:600}
.kind{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px}
.note{color:#7b8794;font-style:italic}table.narrow{width:auto;min-width:45%}
pre{background:#f8f9fb;border:1px solid #e5e7eb;padding:12px;font-size:13px;overflow-x:auto}
footer{margin-top:36px;padding-top:10px;border-top:1px solid #e5e7eb;color:#7b8794;font-size:13px}
"""


def metric_name(m: str) -> str:
    return NAMES.get(m, m.replace("_", " ").capitalize())


def _e(s: Any) -> str:
    return html.escape(str(s))


def fmt(x: Any, nd: int = 3) -> str:
    v = num(x)
    return "n/a" if math.isnan(v) else f"{v:.{nd}f}"


def fmt_ci(d: Any, nd: int = 3, ci_nd: int = 2) -> str:
    """``0.912 [0.88, 0.94]``; 'n/a' for a missing or NaN mean."""
    d = d if isinstance(d, dict) else {}
    m, lo, hi = num(d.get("mean")), num(d.get("low")), num(d.get("high"))
    if math.isnan(m):
        return "n/a"
    ci = "" if math.isnan(lo) or math.isnan(hi) else f" [{lo:.{ci_nd}f}, {hi:.{ci_nd}f}]"
    return f"{m:.{nd}f}{ci}"


def fmt_count(x: Any, unit: str = "") -> str:
    """1234567 -> '1.2 M'; with unit 'FLOP': '35.1 MFLOP'."""
    v = num(x)
    if math.isnan(v):
        return "n/a"
    for scale, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.1f} {p}{unit}"
    return f"{v:.0f} {unit}".strip()


def fmt_p(p: Any, n_boot: Any = None) -> str:
    v, nb = num(p), num(n_boot)
    if math.isnan(v):
        return "p n/a"
    if v < 0.001:
        return "p < 0.001"
    if nb > 0 and v <= 1.0 / nb + 1e-12:  # at the resolution of the bootstrap
        return f"p ≤ {1.0 / nb:.2g}"
    return f"p = {v:.3f}" if v < 0.01 else f"p = {v:.2f}"


def _stat(entry: dict[str, Any], metric: str) -> dict[str, float]:
    d = (entry.get("test") or {}).get(metric) or {}
    return {k: num(d.get(k)) for k in ("mean", "low", "high")}


def ranked(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries best-first on the test primary metric (stable; NaN last)."""
    pm = (results.get("study") or {}).get("primary_metric", "auroc")
    ents = list(results.get("entries") or [])
    return sorted(
        ents,
        key=lambda e: (
            math.isnan(_stat(e, pm)["mean"]),
            -(_stat(e, pm)["mean"] if not math.isnan(_stat(e, pm)["mean"]) else 0.0),
        ),
    )


def _metrics(results: dict[str, Any]) -> list[str]:
    seen = [m for e in results.get("entries") or [] for m in (e.get("test") or {})]
    return list(dict.fromkeys([*_table_metrics(results), *seen]))


def _table_metrics(results: dict[str, Any]) -> list[str]:
    pm = (results.get("study") or {}).get("primary_metric", "auroc")
    name = (results.get("study") or {}).get("task_type") or "binary"  # none: classification
    table = task_type(name).table_metrics if name in TASK_TYPES else None
    if table is None:
        # Other tasks: their own metrics, primary first, in the order the head reports them.
        seen = [m for e in results.get("entries") or [] for m in (e.get("test") or {})]
        return list(dict.fromkeys([pm, *seen]))
    fixed = list(table)
    return fixed if pm in fixed else [*fixed, pm]


class _Ctx:
    def __init__(self, results: dict[str, Any]) -> None:
        self.r = results
        self.study = results.get("study") or {}
        self.pm = self.study.get("primary_metric", "auroc")
        self.pname = metric_name(self.pm)
        self.entries = ranked(results)
        # Ids as the results file has them (strings, unless it was written by hand).
        self.by_id: dict[Any, dict[str, Any]] = {e.get("id"): e for e in self.entries}
        self.winner: str | None = results.get("winner") or (
            self.entries[0]["id"] if self.entries else None
        )
        self.best: str | None = results.get("best_single")
        self.label = {i: str(e.get("label", i)) for i, e in self.by_id.items()}
        self.colors: dict[str, str] = {}
        for i in self._focus() + list(self.by_id):
            kind = self.by_id.get(i, {}).get("kind", "")
            c = KIND_COLORS.get(kind, PALETTE[len(self.colors) % len(PALETTE)])
            if c in self.colors.values():
                c = next((p for p in PALETTE if p not in self.colors.values()), c)
            self.colors.setdefault(i, c)

    def _focus(self) -> list[str]:
        c = self.r.get("comparison") or {}
        ids = [c.get("a") or self.winner, c.get("b") or self.best, self.winner, self.best]
        return [i for i in dict.fromkeys(ids) if i]

    def pair(self) -> list[str]:
        return self._focus()[:2]

    def name(self, i: str) -> str:
        tag = " (winner)" if i == self.winner else " (best single)" if i == self.best else ""
        return self.label.get(i, i) + tag

    def order(self, ids: Any) -> list[str]:
        ids = list(ids)
        return [i for i in self._focus() if i in ids] + [i for i in ids if i not in self._focus()]


def _selection(study: dict[str, Any]) -> str:
    sel = str(study.get("selection") or "")
    split, _, m = sel.partition("/")
    return f"{SPLITS.get(split, split)} {metric_name(m)}" if m else sel


def replicates(study: dict[str, Any]) -> str:
    """'3 seeds (0, 1, 2)' or '5 folds (out-of-fold predictions pooled)'."""
    if study.get("folds"):
        return f"{study['folds']} folds (out-of-fold predictions pooled)"
    seeds = study.get("seeds") or []
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def pooling(study: dict[str, Any]) -> str:
    return "pooled over folds" if study.get("folds") else "mean over seeds"


def _summary(c: _Ctx) -> str:
    v = c.r.get("verdict")
    if not isinstance(v, dict):
        return _note("No verdict in the results (written by an older FusionDx?); rerun the study.")
    lines = [str(x) for x in v.get("lines") or []]
    warn = [x for x in lines if x.startswith(WARNINGS)]
    rest = [x for x in lines if x not in warn]
    alert = "".join(f'<div class="verdict bad">{_e(x)}</div>' for x in warn)
    facts = [_e(x) for x in rest] + _facts(c)
    items = "".join(f"<li>{f}</li>" for f in facts)
    return (
        f'{alert}<div class="verdict {_e(v.get("tone", "meh"))}"><b>{_e(v.get("headline", ""))}</b>'
        f'</div><ul class="facts">{items}</ul>'
    )


def _facts(c: _Ctx) -> list[str]:
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
        f"{len(c.entries)} models compared on test {_e(c.pname)}: {_e(counts)}; every neural "
        f"model trained over {_e(replicates(c.study))}, the references fitted once per split; "
        f"95% CIs from {_e(c.study.get('n_boot', 'n/a'))} bootstrap resamples of the "
        f"{_e(n_test if n_test is not None else 'n/a')} test cases."
    ]
    if c.entries and c.entries[0].get("id") != c.winner:
        facts.append(
            f"On test, <b>{_e(c.label[c.entries[0]['id']])}</b> ranks first; the winner "
            "is picked on validation to keep the test set untouched."
        )
    method = str(cmp_.get("method") or "")
    if method:
        facts.append(f"Differences and p-values: {_e(method)}.")
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
            f"Leaving out <b>{_e(worst)}</b> changes {_e(who)}'s "
            f"{_e(metric_name(ab.get('metric') or c.pm))} the most "
            f"({plots.signed(drops[worst])}); leaving out {_e(least)} the least "
            f"({plots.signed(drops[least])})."
        )
    absent = c.r.get("references_absent") or []
    if absent:
        facts.append(
            "Not run: " + _e("; ".join(f"{a['label']} ({a['why']})" for a in absent)) + "."
        )
    return facts


def _fig(uri: str, caption: str = "") -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{_e(caption or "figure")}">{cap}</figure>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _kind_badge(kind: str) -> str:
    color = KIND_COLORS.get(kind, "#7b8794")
    return f'<span class="kind" style="background:{color}">{_e(KIND_LABEL.get(kind, kind))}</span>'


def _ci_cell(d: dict[str, float]) -> str:
    s = fmt_ci(d)
    head, _, ci = s.partition(" ")
    return f"{head} <span class=ci>{ci}</span>" if ci else head


def _ranked_section(c: _Ctx) -> str:
    rows = [
        {
            "id": e.get("id"),
            "label": c.label.get(e.get("id"), ""),
            "kind": e.get("kind", ""),
            **_stat(e, c.pm),
        }
        for e in c.entries
    ]
    parts = (
        [
            _fig(
                plots.ranked_chart(
                    rows, c.pname, c.winner, c.best, pooling(c.study), c.r.get("best_reference")
                ),
                f"Test {c.pname}, {pooling(c.study)}, with 95% bootstrap CI; best first.",
            )
        ]
        if rows
        else [_note("No entries in the results.")]
    )
    ms = _table_metrics(c.r)
    head = "".join(f'<th class="{"pm" if m == c.pm else ""}">{_e(metric_name(m))}</th>' for m in ms)
    trs = []
    for rank, e in enumerate(c.entries, 1):
        i = e.get("id")
        cls = "win" if i == c.winner else "best" if i in (c.best, c.r.get("best_reference")) else ""
        mods = ", ".join(map(str, e.get("modalities") or []))
        fus = e.get("fusion") if e.get("fusion") != c.label.get(i) else None
        sub = " · ".join(str(x) for x in (fus, e.get("level"), mods) if x)
        flags = e.get("flags") or []
        warn = f'<small class="warn">⚠ {_e("; ".join(flags))}</small>' if flags else ""
        cells = "".join(
            f'<td class="{"pm" if m == c.pm else ""}">{_ci_cell(_stat(e, m))}</td>' for m in ms
        )
        trs.append(
            f'<tr class="{cls}"><td>{rank}</td><td class="l"><b>{_e(c.label.get(i, i))}'
            f"</b>{' ★' if i == c.winner else ''}<small>{_e(sub)}</small>{warn}</td>"
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
        _note(
            f"★ winner (chosen on {_selection(c.study)}); highlighted in yellow, "
            "the best single modality and the best reference in blue. Reference rows are scikit-learn models "
            "fitted on the same training cases and tuned on the same validation cases; "
            "probes see only what should not matter; ⚠ marks a model that did not learn."
        )
    )
    return "".join(parts)


def _head_to_head(c: _Ctx) -> str:
    parts = []
    pair = c.pair()
    task = c.study.get("task_type", "binary")
    curves = c.r.get("curves") or {}
    have = [(c.name(i), c.colors[i], curves[i]) for i in pair if isinstance(curves.get(i), dict)]
    if have:
        parts.append("<h3>ROC and precision-recall curves</h3>")
        parts.append(
            _fig(
                plots.roc_pr_chart(have),
                "Test split; the first seed's model (with folds: all out-of-fold predictions).",
            )
        )
    else:
        why = f"the task is {task}" if task != "binary" else "no curves in the results"
        parts.append(_note(f"ROC and PR curves skipped: {why}."))
    cm = c.r.get("confusion_matrix") or {}
    mat, labs = cm.get("matrix"), cm.get("labels") or c.study.get("classes") or []
    if mat and len(mat) == len(labs) and all(len(r) == len(labs) for r in mat):
        who = cm.get("entry") or c.winner
        assert who is not None  # a confusion matrix comes from an entry
        parts.append(f"<h3>Confusion matrix: {_e(c.name(who))}</h3>")
        parts.append(
            _fig(
                plots.confusion_chart([str(x) for x in labs], mat),
                "Rows: true class; counts with the share of each true class.",
            )
        )
    else:
        parts.append(
            _note("Confusion matrix skipped: none (or not a square class matrix) in the results.")
        )
    cal = [(n, col, d) for n, col, d in have if (d.get("calibration") or {}).get("mean_predicted")]
    if cal:
        parts.append("<h3>Calibration</h3>")
        parts.append(
            _fig(
                plots.calibration_chart(cal),
                "Points on the diagonal mean the "
                "predicted probability matches the observed rate; below it, the model "
                "is over-confident.",
            )
        )
    else:
        why = f"the task is {task}" if task != "binary" else "no calibration data in the results"
        parts.append(_note(f"Calibration curve skipped: {why}."))
    return "".join(parts)


def _ablation(c: _Ctx) -> str:
    ab = c.r.get("ablation")
    if not isinstance(ab, dict) or not ab.get("without"):
        return _note("No ablation in this study; section skipped.")

    def st(d: Any) -> dict[str, float]:
        return {k: num((d or {}).get(k)) for k in ("mean", "low", "high")}

    without = {str(m): st(v) for m, v in ab["without"].items()}
    only = {str(m): st(v) for m, v in (ab.get("only") or {}).items()}
    metric = metric_name(ab.get("metric") or c.pm)
    who = c.label.get(ab.get("entry"), ab.get("entry") or c.winner)
    return _fig(
        plots.ablation_chart(st(ab.get("full")), without, only, str(who), metric),
        f"Left: {who} retrained without one modality; the white number in each bar is the "
        "change from using all modalities (dashed line). Right: each modality alone.",
    )


def _robustness(c: _Ctx) -> str:
    rb = c.r.get("robustness")
    if not isinstance(rb, dict):
        return _note("No robustness evaluation in this study; section skipped.")
    metric = metric_name(rb.get("metric") or c.pm)
    parts = ["<h3>A modality removed at test time</h3>"]
    rem = rb.get("removed") or {}
    if rem:
        rem = {i: rem[i] for i in c.order(rem)}
        parts.append(
            _fig(
                plots.removed_chart(rem, {i: c.name(i) for i in rem}, c.colors, metric),
                "Trained with all modalities, evaluated with one modality blanked "
                "for every test case; n/a: the model cannot predict without it.",
            )
        )
    else:
        parts.append(_note("No removed-modality evaluation in the results; skipped."))
    parts.append("<h3>A growing share of test cases missing one modality</h3>")
    mr = rb.get("missing_rate") or {}
    if mr:
        mr = {i: mr[i] for i in c.order(mr)}
        parts.append(
            _fig(
                plots.missing_chart(mr, {i: c.name(i) for i in mr}, metric),
                "0%: every case complete; 100%: the modality is missing for all.",
            )
        )
    else:
        parts.append(_note("No missing-rate evaluation in the results; skipped."))
    return "".join(parts)


def _training(c: _Ctx) -> str:
    tc = c.r.get("training_curves") or {}
    tc = {i: tc[i] for i in c.order(tc) if isinstance(tc[i], dict)}
    if not tc:
        return _note("No training curves in the results; section skipped.")
    return _fig(
        plots.training_chart(tc, {i: c.name(i) for i in tc}, c.colors, f"val_{c.pm}", c.pname),
        "Seed 0; the star marks the best validation epoch.",
    )


def _data(c: _Ctx) -> str:
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
        parts.append(_note("No split summary in the results."))
    if avail:
        sp = list(dict.fromkeys(k for v in avail.values() for k in v))
        rows = []
        for m, v in avail.items():
            cells = "".join(_avail_cell(num(v.get(s))) for s in sp)
            rows.append(f'<tr><td class="l">{_e(m)}</td>{cells}</tr>')
        fold0 = " (fold 0)" if per_fold else ""
        parts.append(
            f'<h3>Modality availability (% of cases){fold0}</h3><div class="tw">'
            f'<table class="narrow"><tr><th class="l">Modality</th>'
            f"{''.join(f'<th>{_e(s)}</th>' for s in sp)}</tr>{''.join(rows)}"
            "</table></div>"
        )
    else:
        parts.append(_note("No modality availability in the results."))
    return "".join(parts)


def _split_table(rows_in: list[tuple[str, str, dict[str, Any]]]) -> str:
    """(fold, split, {cases, classes}) rows as one table, with each class's share."""
    classes = list(dict.fromkeys(k for _, _, s in rows_in for k in s.get("classes") or {}))
    folds = any(f for f, _, _ in rows_in)
    head = (
        ('<th class="l">Fold</th>' if folds else "")
        + '<th class="l">Split</th><th>Cases</th>'
        + "".join(f"<th>{_e(k)}</th>" for k in classes)
    )
    rows = []
    for fold, name, s in rows_in:
        n = num(s.get("cases"))
        cells = []
        for k in classes:
            v = num((s.get("classes") or {}).get(k))
            pct = f' <span class="pc">({100 * v / n:.0f}%)</span>' if n > 0 and v == v else ""
            cells.append(f"<td>{fmt(v, 0)}{pct}</td>")
        first = f'<td class="l">{_e(fold)}</td>' if folds else ""
        rows.append(
            f'<tr>{first}<td class="l">{_e(name)}</td><td>{fmt(n, 0)}</td>{"".join(cells)}</tr>'
        )
    return f'<div class="tw"><table class="narrow"><tr>{head}</tr>{"".join(rows)}</table></div>'


def _avail_cell(v: float) -> str:
    if math.isnan(v):
        return "<td>n/a</td>"
    alpha = min(0.65, 0.04 + 1.2 * (1 - v))  # the more missing, the more orange
    return f'<td style="background:rgba(230,159,0,{alpha:.2f})">{100 * v:.0f}%</td>'


def _config(c: _Ctx) -> str:
    y = c.study.get("config_yaml")
    return f"<pre>{_e(y)}</pre>" if y else _note("No resolved configuration in the results.")


SectionFn = Callable[[_Ctx], str]


def _samples(c: _Ctx) -> str:
    s = c.r.get("samples")
    if not s:
        return _note("No samples for this task type.")
    return task_type(s["kind"]).samples_html(s, c.name, _fig)


SECTIONS: list[tuple[str, str, SectionFn]] = [
    ("summary", "Summary", _summary),
    ("ranking", "Ranked comparison", _ranked_section),
    ("head", "Winner vs best single modality", _head_to_head),
    ("samples", "Samples", _samples),
    ("ablation", "Ablation: which modality matters", _ablation),
    ("robustness", "Robustness to missing modalities", _robustness),
    ("training", "Training curves", _training),
    ("data", "Data", _data),
    ("config", "Configuration", _config),
]


def _safe(fn: SectionFn, c: _Ctx, title: str) -> str:
    try:
        return fn(c)
    except Exception as err:  # a malformed optional part must not lose the whole report
        warnings.warn(f"study report: section {title!r} could not be drawn: {err!r}", stacklevel=2)
        return _note(f"This section could not be drawn ({type(err).__name__}: {err}).")


def write_report(results: dict, out: Path) -> Path:
    """Render ``results`` to a self-contained HTML page at ``out``; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = _Ctx(results)
    out = Path(out)
    with plt.rc_context(plots.STYLE):
        secs = [(sid, title, _safe(fn, c, title)) for sid, title, fn in SECTIONS]
    try:  # the installed distribution's version, without importing the package's top layer
        version = importlib.metadata.version("fusiondx")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        version = "dev"
    nav = " ".join(f'<a href="#{sid}">{i}. {_e(t)}</a>' for i, (sid, t, _) in enumerate(secs, 1))
    body = "".join(
        f'<section id="{sid}"><h2>{i}. {_e(t)}</h2>{h}</section>'
        for i, (sid, t, h) in enumerate(secs, 1)
    )
    name = c.study.get("name") or "study"
    task = c.study.get("task_type") or ""
    classes = ", ".join(map(str, c.study.get("classes") or []))
    sub = " · ".join(
        x
        for x in (
            f"task {c.study.get('task', '')} ({task})" if task else "",
            f"classes: {classes}" if classes else "",
            f"created {c.study.get('created', '')}" if c.study.get("created") else "",
        )
        if x
    )
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>FusionDx study: {_e(name)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>FusionDx study: {_e(name)}</h1><p class="sub">{_e(sub)}</p><nav>{nav}</nav>'
        f"{body}<footer>FusionDx {_e(version)} · report generated {now} · results: "
        f"<code>{_e(c.study.get('results_path') or 'n/a')}</code></footer></main>"
        "</body></html>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _md(s: Any) -> str:
    return html.escape(str(s), quote=False).replace("|", "\\|").replace("\n", " ")


def write_tables(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """``table.md`` (GitHub Markdown, ranked) and ``table.csv`` (one row per entry)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = results.get("study") or {}
    pm = study.get("primary_metric", "auroc")
    ents = ranked(results)
    ms = _table_metrics(results)
    head = [
        "#",
        "Entry",
        "Kind",
        *(metric_name(m) for m in ms),
        "Parameters",
        "FLOPs per case",
        "Train time (s)",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", ":---", ":---"] + ["---:"] * (len(head) - 3)) + "|",
    ]
    for rank, e in enumerate(ents, 1):
        star = " ★" if e.get("id") == results.get("winner") else ""
        star += " ⚠" if e.get("flags") else ""
        cells = [
            str(rank),
            _md(e.get("label", e.get("id"))) + star,
            _md(e.get("kind", "")),
            *(fmt_ci(_stat(e, m)) for m in ms),
            fmt_count(e.get("n_parameters")),
            fmt_count(e.get("flops_per_case"), "FLOP"),
            fmt(e.get("train_seconds"), 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    n_test = study.get("n_test")
    cases = f" ({n_test} cases)" if n_test is not None else ""
    over = (
        f"Pooled out-of-fold predictions of {study['folds']} folds"
        if study.get("folds")
        else f"Mean over {replicates(study)}"
    )
    lines += [
        "",
        f"{over} on the test split{cases} with 95% CI: bootstrap over test cases "
        f"({study.get('n_boot', 'n/a')} resamples); references fitted once per split. Sorted "
        f"by test {metric_name(pm)}; ★ winner, chosen on {_selection(study)}.",
    ]
    for e in ents:
        if e.get("flags"):
            lines.append(f"⚠ {_md(e.get('label', e.get('id')))}: {_md('; '.join(e['flags']))}.")
    for a in results.get("references_absent") or []:
        lines.append(f"Not run: {_md(a['label'])} ({_md(a['why'])}).")
    verdict = results.get("verdict") or {}
    if verdict.get("headline"):
        lines += ["", f"**{_md(verdict['headline'])}**"] + [
            f"- {_md(x)}" for x in verdict.get("lines") or []
        ]
    lines.append("")
    md = out_dir / "table.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    cols = ["id", "label", "kind", "fusion", "level", "modalities"]
    allm = _metrics(results)
    cols += [f"{m}_{k}" for m in allm for k in ("mean", "low", "high")]
    cols += ["n_parameters", "flops_per_case", "train_seconds", f"val_{pm}"]
    path = out_dir / "table.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for e in ents:
            row = {k: e.get(k, "") for k in ("id", "label", "kind", "fusion", "level")}
            row["modalities"] = ";".join(map(str, e.get("modalities") or []))
            for m in allm:
                row.update({f"{m}_{k}": _csv_num(v) for k, v in _stat(e, m).items()})
            for k in ("n_parameters", "flops_per_case", "train_seconds"):
                row[k] = _csv_num(num(e.get(k)), integer=k == "n_parameters")
            row[f"val_{pm}"] = _csv_num(num((e.get("val") or {}).get(pm)))
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    return md, path


def _csv_num(v: float, integer: bool = False) -> str:
    if math.isnan(v):
        return ""
    return str(int(v)) if integer and v.is_integer() else repr(v)
