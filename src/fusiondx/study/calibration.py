"""The study's calibration and triage results: per classifier entry the ECE (fixed and adaptive
bins) and Brier score of its test probabilities before and after the temperature scaling its
runs fitted on validation, the conformal coverage and mean set size per class (neural entries and scikit-learn references, which get the same post-hoc layer on
their validation probabilities); for the winner
the reliability diagram before and after and the selective-prediction curve (accuracy of the
cases kept when the least certain are referred first).

Everything is read back from the runs' ``predictions.csv`` (``_prob_raw_`` before calibration,
``_prob_`` after, ``_pred`` at the stored threshold, ``_set``) and ``posthoc.json``, averaged over
an entry's replicates; runs written without a post-hoc layer are left out.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.evaluation import calibration as cal
from fusiondx.evaluation import conformal as conf
from fusiondx.study.analysis import NEURAL_KINDS, EntryData
from fusiondx.tasks import TaskInfo, task_type


def _posthoc(d: EntryData, task: str) -> dict[str, Any] | None:
    path = d.jobs[0].run_dir / "posthoc.json" if d.jobs else None
    if path is None or not path.is_file():
        return None
    return (json.loads(path.read_text()).get("tasks") or {}).get(task)


def _raw_probs(info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
    return task_type(info).frame_raw_probs(info, frame)  # type: ignore[attr-defined]


def _has_posthoc(info: TaskInfo, frame: pd.DataFrame) -> bool:
    return any(c.startswith(f"{info.name}_prob_raw_") for c in frame.columns)


def _sets(info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
    col = f"{info.name}_set"
    if col not in frame:
        return None
    cells = frame[col].fillna("").astype(str)
    return np.array(
        [[int(c in set(v.split("|"))) for c in info.classes] for v in cells], dtype=np.int64
    )


def _mean(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Key-wise mean of numbers (recursing into dicts) over replicates."""
    out: dict[str, Any] = {}
    for k, v in dicts[0].items():
        if isinstance(v, dict):
            out[k] = _mean([d[k] for d in dicts])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [float(d[k]) for d in dicts if d.get(k) is not None]
            out[k] = float(np.nanmean(vals)) if vals else float("nan")
        else:
            out[k] = v
    return out


def entry_calibration(d: EntryData, info: TaskInfo) -> dict[str, Any] | None:
    """One entry's calibration before/after and conformal report on test, over its replicates."""
    frames = [f for f in d.frames if _has_posthoc(info, f)]
    if not frames:
        return None
    tt = task_type(info)
    before, after, sets = [], [], []
    for f in frames:
        y = tt.frame_truth(info, f)
        before.append(cal.calibration_summary(_raw_probs(info, f), y, info.type))
        after.append(cal.calibration_summary(tt.frame_probs(info, f), y, info.type))
        s = _sets(info, f)
        if s is not None:
            sets.append(conf.set_report(s, y, info.classes))
    entry = _posthoc(d, info.name) or {}
    out: dict[str, Any] = {
        "id": d.entry.id,
        "label": d.entry.label,
        "kind": d.entry.kind,
        "replicates": len(frames),
        "method": (entry.get("calibration") or {}).get("method", "none"),
        "temperature": (entry.get("calibration") or {}).get("temperature"),
        "threshold": entry.get("threshold", {}).get("values"),
        "threshold_rule": entry.get("threshold", {}).get("rule"),
        "before": _mean(before),
        "after": _mean(after),
        "conformal": _mean(sets) if sets else None,
    }
    if out["conformal"] is not None:
        out["conformal"]["nominal"] = (entry.get("conformal") or {}).get("coverage")
    return out


def winner_curves(d: EntryData, info: TaskInfo) -> dict[str, Any] | None:
    """The winner's reliability diagram before/after (first replicate) and its selective-
    prediction curve (single-label tasks)."""
    f = d.frames[0]
    if not _has_posthoc(info, f):
        return None
    tt = task_type(info)
    y = tt.frame_truth(info, f)
    p, raw = tt.frame_probs(info, f), _raw_probs(info, f)
    out: dict[str, Any] = {
        "entry": d.entry.id,
        "reliability": {
            "before": _diagram(raw, y, info.type),
            "after": _diagram(p, y, info.type),
        },
        "selective": None,
    }
    calls = tt.frame_calls(info, f)
    if info.type != "multilabel" and calls is not None:
        probs = conf.class_probs(p, info.type)
        out["selective"] = conf.selective_curve(calls == y, probs.max(axis=1))
    return out


def _diagram(p: np.ndarray, y: np.ndarray, kind: str) -> dict[str, Any]:
    """Reliability data in the shape the report's calibration chart draws."""
    r = cal.reliability(p, y, kind)
    conf_, _ = cal.confidence_outcome(p, y, kind)
    edges = np.linspace(0, 1, cal.N_BINS + 1)
    counts, _ = np.histogram(conf_, bins=edges)
    return {
        "calibration": {
            "mean_predicted": r["mean_predicted"],
            "fraction_positive": r["observed"],
            "count": r["count"],
        },
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def calibration_results(
    loaded: dict[str, EntryData], info: TaskInfo, winner: str
) -> dict[str, Any] | None:
    """``results["calibration"]``: see the module docstring; None for other task types or when
    no run has a post-hoc layer."""
    if not task_type(info).is_classification:
        return None
    entries = []
    for d in loaded.values():
        if d.entry.kind in (*NEURAL_KINDS, "reference"):
            e = entry_calibration(d, info)
            if e is not None:
                entries.append(e)
    if not entries:
        return None
    w = loaded.get(winner)
    focus = winner_curves(w, info) if w is not None else None
    reliability_kind = (
        "top-label confidence against accuracy"
        if info.type == "multiclass"
        else "predicted probability against the observed frequency (every label pooled)"
        if info.type == "multilabel"
        else "probability of the positive class against the observed fraction positive"
    )
    return {
        "entries": entries,
        "winner": focus,
        "measures": reliability_kind,
        "bins": cal.N_BINS,
    }


def threshold_note(loaded: dict[str, EntryData], info: TaskInfo, winner: str) -> str | None:
    """Which threshold the table's threshold metrics use, in words (from the winner's runs)."""
    w = loaded.get(winner)
    entry = _posthoc(w, info.name) if w is not None else None
    if entry is None:
        return None
    from fusiondx.engine.posthoc import describe_threshold

    if info.type == "multiclass":
        return "Accuracy, precision, recall and F1 count the most probable class (argmax)."
    return (
        "Accuracy, precision, recall, F1, sensitivity and specificity of each run are at "
        f"{describe_threshold(entry)} for the winner (each run uses its own "
        "validation-chosen threshold, references included); AUROC and AUPRC use no threshold."
    )
