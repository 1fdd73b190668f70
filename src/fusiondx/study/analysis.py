"""From finished runs to the study's numbers: pooled CIs, the winner (on validation), curves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.evaluation.bootstrap import paired_difference, pooled_ci
from fusiondx.evaluation.delong import delong_test
from fusiondx.study.plan import Entry
from fusiondx.study.runner import Job
from fusiondx.tasks import TaskInfo, task_type


@dataclass
class EntryData:
    """One entry's test predictions, pooled over its replicates."""

    entry: Entry
    jobs: list[Job]
    case_ids: np.ndarray  # test cases, in a fixed order
    y: np.ndarray
    probs: list[np.ndarray]  # one per seed (folds: one, pooled out of fold); classification only
    metrics: list[dict[str, Any]]  # metrics.json per replicate
    frames: list[pd.DataFrame] = field(default_factory=list)  # test predictions per seed, in order

    def val(self, task: str, metric: str) -> float:
        """Mean validation metric over replicates: what chooses winners."""
        vals = [m["val"][task].get(metric) for m in self.metrics]
        vals = [v for v in vals if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")


def task_info(run_dir: Path, task: str) -> TaskInfo:
    state = json.loads((run_dir / "preprocessing.json").read_text())
    for t in state["tasks"]:
        if t["name"] == task:
            return TaskInfo.from_dict(t)
    raise KeyError(task)


def load_entry(entry: Entry, jobs: list[Job], info: TaskInfo, pooled_folds: bool) -> EntryData:
    frames, metrics = [], []
    for j in jobs:
        metrics.append(json.loads((j.run_dir / "metrics.json").read_text()))
        frames.append(
            pd.read_csv(j.run_dir / "predictions.csv", dtype={"case_id": str})
            .query("split == 'test'")
            .set_index("case_id")
        )
    if pooled_folds:
        frames = [pd.concat(frames)]
    order = np.sort(frames[0].index.to_numpy())
    for f in frames[1:]:
        if set(f.index) != set(order):
            raise ValueError(f"entry {entry.id}: replicates were scored on different test cases")
    ordered = [f.loc[order] for f in frames]
    tt = task_type(info)
    if not tt.is_classification:
        return EntryData(entry, jobs, order, np.empty(0), [], metrics, ordered)
    y = tt.frame_truth(info, ordered[0])
    probs = [tt.frame_probs(info, f) for f in ordered]
    return EntryData(entry, jobs, order, y, probs, metrics, ordered)


def summarise(d: EntryData, info: TaskInfo, n_boot: int) -> dict[str, Any]:
    """One entry of results.json: test metrics with pooled bootstrap CIs, cost, mean val metrics."""
    tt = task_type(info)
    per_seed = [tt.case_scores(info, f) for f in d.frames]
    groups = tt.strata(info, d.frames[0])
    test = {
        m: pooled_ci([s[m] for s in per_seed], len(d.case_ids), groups, n_boot=n_boot)
        for m in tt.metrics
    }
    val_names = sorted(
        {
            k
            for m in d.metrics
            for k, v in m["val"][info.name].items()
            if isinstance(v, (int, float))
        }
    )
    m0 = d.metrics[0]
    return {
        "id": d.entry.id,
        "label": d.entry.label,
        "kind": d.entry.kind,
        "fusion": d.entry.fusion,
        "level": m0.get("level"),
        "modalities": list(d.entry.modalities),
        "n_parameters": m0.get("n_parameters"),
        "flops_per_case": m0.get("flops_per_case"),
        "train_seconds": float(np.mean([m["train_seconds"] for m in d.metrics])),
        "epochs": float(np.mean([m.get("epochs_run", np.nan) for m in d.metrics])),
        "val": {k: d.val(info.name, k) for k in val_names},
        "test": test,
        "runs": [
            {"name": j.rep.name, "seed": j.rep.seed, "run_dir": str(j.run_dir)} for j in d.jobs
        ],
    }


def choose(
    data: dict[str, EntryData], kinds: tuple[str, ...], task: str, metric: str
) -> str | None:
    """The entry of these kinds with the best mean validation metric; test data plays no part."""
    best, best_val = None, -np.inf
    for eid, d in data.items():
        if d.entry.kind not in kinds:
            continue
        v = d.val(task, metric)
        if np.isfinite(v) and v > best_val:
            best, best_val = eid, v
    return best


def comparison(
    a: EntryData, b: EntryData, info: TaskInfo, metric: str, n_boot: int
) -> dict[str, Any]:
    tt = task_type(info)
    out = paired_difference(
        [tt.case_scores(info, f)[metric] for f in a.frames],
        [tt.case_scores(info, f)[metric] for f in b.frames],
        len(a.case_ids),
        tt.strata(info, a.frames[0]),
        n_boot=n_boot,
    )
    out |= {
        "metric": metric,
        "a": a.entry.id,
        "b": b.entry.id,
        "method": f"paired bootstrap over {len(a.case_ids)} test cases, pooled over {len(a.frames)} "
        f"{'seed' if len(a.frames) == 1 else 'seeds'}",
    }
    out["delong"] = None
    if tt.curves and metric == "auroc":
        dl = delong_test(a.y, np.mean(a.probs, axis=0), np.mean(b.probs, axis=0))
        out["delong"] = {"z": dl["z"], "p_value": dl["p_value"]}
    return out


def curves(d: EntryData) -> dict[str, Any]:
    """ROC, PR and calibration of a binary entry's first replicate (pooled folds: all cases)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y, p = d.y, d.probs[0]
    fpr, tpr, _ = roc_curve(y, p)
    prec, rec, _ = precision_recall_curve(y, p)
    frac, mean_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    edges = np.linspace(0, 1, 11)
    counts, _ = np.histogram(p, bins=edges)
    bins = np.clip(np.digitize(p, edges[1:-1]), 0, 9)
    per_bin = np.bincount(bins, minlength=10)
    return {
        "roc": {"fpr": _thin(fpr), "tpr": _thin(tpr), "auc": float(roc_auc_score(y, p))},
        "pr": {
            "recall": _thin(rec),
            "precision": _thin(prec),
            "ap": float(average_precision_score(y, p)),
        },
        "calibration": {
            "mean_predicted": mean_pred.tolist(),
            "fraction_positive": frac.tolist(),
            "count": [int(c) for c in per_bin[per_bin > 0]],
        },
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def confusion(d: EntryData, info: TaskInfo) -> dict[str, Any] | None:
    if not task_type(info).class_indices:
        return None
    p = d.probs[0]
    # The run's calls at its stored threshold; 0.5 / argmax for a table written without one.
    calls = task_type(info).frame_calls(info, d.frames[0])
    fallback = (p >= 0.5).astype(int) if p.ndim == 1 else p.argmax(1)
    pred = fallback if calls is None else calls
    k = len(info.classes)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (d.y, pred), 1)
    return {"entry": d.entry.id, "labels": list(info.classes), "matrix": matrix.tolist()}


def training_curves(run_dir: Path, task: str, metric: str) -> dict[str, list[float]] | None:
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return None
    frame = pd.read_csv(path).groupby("epoch", as_index=False).first()
    col = next((c for c in (f"val/{task}/{metric}", f"val/{metric}") if c in frame), None)
    out = {"epoch": frame["epoch"].astype(int).tolist()}
    for key, c in (("train_loss", "train/loss"), ("val_loss", "val/loss"), (f"val_{metric}", col)):
        if c and c in frame:
            out[key] = [None if pd.isna(v) else float(v) for v in frame[c]]
    return out


def _thin(x: np.ndarray, n: int = 400) -> list[float]:
    """Curves with thousands of points embed no better than 400; keep the report small."""
    x = np.asarray(x, dtype=float)
    if len(x) <= n:
        return x.tolist()
    return x[np.unique(np.linspace(0, len(x) - 1, n).round().astype(int))].tolist()


NEURAL_KINDS = ("single", "fusion", "ablation", "tuned")


def learning_flags(data: dict[str, EntryData], info: TaskInfo) -> dict[str, list[str]]:
    """Per neural entry, why it may not have learned: its best epoch was the first, its test
    predictions are the same for every case, or (generation) the same as the decoder that sees
    no input. A degenerate baseline flatters fusion as much as a weak one."""
    nocontext = data.get("single_nocontext") if task_type(info).baseline_without_input else None
    out: dict[str, list[str]] = {}
    for eid, d in data.items():
        if d.entry.kind not in NEURAL_KINDS:
            continue
        n, why = len(d.metrics), []
        first = sum(m.get("best_epoch") == 0 and (m.get("epochs_run") or 0) > 1 for m in d.metrics)
        if first:
            why.append(f"best epoch 0 in {first} of {n} {_reps(d)}")
        capped = sum(_at_cap(j.config, m) for j, m in zip(d.jobs, d.metrics, strict=True))
        if capped > n / 2:
            why.append(
                f"still improving at the {_cap(d.jobs[0].config)}-epoch cap in {capped} of {n} {_reps(d)}"
            )
        # The decoder without input writes one text for every case by construction.
        flat = (
            0
            if eid == "single_nocontext"
            else sum(task_type(info).constant(info, f) for f in d.frames)
        )
        if flat:
            why.append(
                f"the same prediction for every test case in {flat} of {len(d.frames)} {_reps(d)}"
            )
        if nocontext is not None and eid != "single_nocontext":
            col = f"{info.name}_pred"
            same = [
                float(np.mean(a[col].fillna("").to_numpy() == b[col].fillna("").to_numpy()))
                for a, b in zip(d.frames, nocontext.frames, strict=False)
            ]
            if same and min(same) >= 0.99:
                why.append(
                    f"writes the same text as the decoder without input for {min(same):.0%} of test cases"
                )
        if why:
            out[eid] = why
    return out


def _cap(config: dict[str, Any]) -> int:
    from fusiondx.config import TrainConfig

    return int((config.get("train") or {}).get("epochs", TrainConfig().epochs))


def _at_cap(config: dict[str, Any], m: dict[str, Any]) -> bool:
    """Best epoch the last one allowed: the comparison was decided by the epoch budget."""
    cap = ((m.get("small_data") or {}).get("changed") or {}).get("train.epochs") or _cap(config)
    return cap > 1 and m.get("best_epoch") == cap - 1


def _reps(d: EntryData) -> str:
    return "folds" if d.jobs and d.jobs[0].rep.fold is not None else "seeds"
