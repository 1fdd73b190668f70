"""The report's figure sections: winner vs best single modality, samples, the ablation,
robustness to missing modalities and the training curves."""

from __future__ import annotations

from typing import Any

from fusiondx.study import plots
from fusiondx.study.plots import num
from fusiondx.study.report._context import Context, esc, figure, note
from fusiondx.study.report._format import metric_name
from fusiondx.tasks import task_type


def head_to_head_section(c: Context) -> str:
    parts = []
    pair = c.pair()
    task = c.study.get("task_type", "binary")
    curves = c.r.get("curves") or {}
    have = [(c.name(i), c.colors[i], curves[i]) for i in pair if isinstance(curves.get(i), dict)]
    if have:
        parts.append("<h3>ROC and precision-recall curves</h3>")
        parts.append(
            figure(
                plots.roc_pr_chart(have),
                "Test split; the first seed's model (with folds: all out-of-fold predictions).",
            )
        )
    else:
        why = f"the task is {task}" if task != "binary" else "no curves in the results"
        parts.append(note(f"ROC and PR curves skipped: {why}."))
    cm = c.r.get("confusion_matrix") or {}
    mat, labs = cm.get("matrix"), cm.get("labels") or c.study.get("classes") or []
    if mat and len(mat) == len(labs) and all(len(r) == len(labs) for r in mat):
        who = cm.get("entry") or c.winner
        assert who is not None  # a confusion matrix comes from an entry
        parts.append(f"<h3>Confusion matrix: {esc(c.name(who))}</h3>")
        parts.append(
            figure(
                plots.confusion_chart([str(x) for x in labs], mat),
                "Rows: true class; counts with the share of each true class.",
            )
        )
    else:
        parts.append(
            note("Confusion matrix skipped: none (or not a square class matrix) in the results.")
        )
    cal = [(n, col, d) for n, col, d in have if (d.get("calibration") or {}).get("mean_predicted")]
    if cal:
        parts.append("<h3>Calibration</h3>")
        parts.append(
            figure(
                plots.calibration_chart(cal),
                "Points on the diagonal mean the "
                "predicted probability matches the observed rate; below it, the model "
                "is over-confident.",
            )
        )
    else:
        why = f"the task is {task}" if task != "binary" else "no calibration data in the results"
        parts.append(note(f"Calibration curve skipped: {why}."))
    return "".join(parts)


def ablation_section(c: Context) -> str:
    ab = c.r.get("ablation")
    if not isinstance(ab, dict) or not ab.get("without"):
        return note("No ablation in this study; section skipped.")

    def st(d: Any) -> dict[str, float]:
        return {k: num((d or {}).get(k)) for k in ("mean", "low", "high")}

    without = {str(m): st(v) for m, v in ab["without"].items()}
    only = {str(m): st(v) for m, v in (ab.get("only") or {}).items()}
    metric = metric_name(ab.get("metric") or c.pm)
    who = c.label.get(ab.get("entry"), ab.get("entry") or c.winner)
    return figure(
        plots.ablation_chart(st(ab.get("full")), without, only, str(who), metric),
        f"Left: {who} retrained without one modality; the white number in each bar is the "
        "change from using all modalities (dashed line). Right: each modality alone.",
    )


def robustness_section(c: Context) -> str:
    rb = c.r.get("robustness")
    if not isinstance(rb, dict):
        return note("No robustness evaluation in this study; section skipped.")
    metric = metric_name(rb.get("metric") or c.pm)
    parts = ["<h3>A modality removed at test time</h3>"]
    rem = rb.get("removed") or {}
    if rem:
        rem = {i: rem[i] for i in c.order(rem)}
        parts.append(
            figure(
                plots.removed_chart(rem, {i: c.name(i) for i in rem}, c.colors, metric),
                "Trained with all modalities, evaluated with one modality blanked "
                "for every test case; n/a: the model cannot predict without it.",
            )
        )
    else:
        parts.append(note("No removed-modality evaluation in the results; skipped."))
    parts.append("<h3>A growing share of test cases missing one modality</h3>")
    mr = rb.get("missing_rate") or {}
    if mr:
        mr = {i: mr[i] for i in c.order(mr)}
        parts.append(
            figure(
                plots.missing_chart(mr, {i: c.name(i) for i in mr}, metric),
                "0%: every case complete; 100%: the modality is missing for all.",
            )
        )
    else:
        parts.append(note("No missing-rate evaluation in the results; skipped."))
    return "".join(parts)


def training_section(c: Context) -> str:
    tc = c.r.get("training_curves") or {}
    tc = {i: tc[i] for i in c.order(tc) if isinstance(tc[i], dict)}
    if not tc:
        return note("No training curves in the results; section skipped.")
    return figure(
        plots.training_chart(tc, {i: c.name(i) for i in tc}, c.colors, f"val_{c.pm}", c.pname),
        "Seed 0; the star marks the best validation epoch.",
    )


def samples_section(c: Context) -> str:
    s = c.r.get("samples")
    if not s:
        return note("No samples for this task type.")
    return task_type(s["kind"]).samples_html(s, c.name, figure)
