"""The study's reference and probe rows: scikit-learn models on the very splits of the trainings.

Every reference (``fusiondx list references``) that fits the data and task becomes an entry of
kind ``reference`` or ``probe``: one per modality of the kind it reads (``ref_tfidf_report``), or
one over all modalities (``ref_all_features``, ``ref_stacked``, ``probe_presence``). Each is fitted
once per distinct split (deterministic models: with seeds the split is the same for every seed,
so one fit stands for all; with folds, one fit per fold, pooled like the trainings), and written
as an ordinary run folder (``predictions.csv``, ``metrics.json``) that the analysis reads like
any other. A reference that cannot run here (a missing library, a task type without an
estimator, no metadata columns) is listed with the reason instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd
from rich.console import Console

from fusiondx.config import Config, PosthocConfig, load_config
from fusiondx.study.plan import BASELINE_FUSION, Entry, Replicate, run_config
from fusiondx.study.runner import Job
from fusiondx.tasks import TaskInfo, task_type

MODALITY_KINDS = ("image", "signal", "text", "tabular")


@dataclass
class Planned:
    entry: Entry
    reference: Any
    group: str | None


def estimates(task: TaskInfo) -> bool:
    """Whether any reference can predict this task type (none draws boxes, masks or text)."""
    return bool(task_type(task).estimator_labels)


def reference_frame(
    t: TaskInfo, ids: np.ndarray, split: str, y: np.ndarray, output: np.ndarray
) -> pd.DataFrame:
    """The predictions table of a reference: ``output`` is what its estimator answers per case
    (see :meth:`fusiondx.tasks.TaskType.estimator_outputs`), in the task type's columns."""
    cols: dict[str, Any] = {"case_id": ids, "split": split}
    cols |= task_type(t).prediction_columns(t, np.asarray(output, dtype=np.float64), y)
    return pd.DataFrame(cols)


def build_case_table(cfg: Config, out_dir: Path, rep: Replicate) -> Any:
    """The references' table of raw inputs, from the first replicate's config (signals decoded
    without normalisation; decoded arrays shared through the study's disk cache)."""
    from fusiondx.data.manifest import read_manifest
    from fusiondx.data.store import prepare
    from fusiondx.references import build_table

    raw = _everything(cfg, out_dir, rep)
    for m in raw["modalities"]:
        if m["kind"] == "signal":
            m.setdefault("preprocessing", {})["normalize"] = "none"
    ref_cfg = load_config(raw)
    return build_table(
        ref_cfg,
        prepare(ref_cfg),
        read_manifest(ref_cfg.data.manifest, sep=ref_cfg.data.sep),
        cfg.data.metadata_columns,
    )


def plan(cfg: Config, table: Any, task: TaskInfo) -> tuple[list[Planned], list[dict[str, str]]]:
    """The reference and probe entries this study can train, and the absent ones with why."""
    from fusiondx.registry import REFERENCES

    chosen = cfg.study.references
    names = REFERENCES.names() if chosen == "all" else list(chosen)
    for n in names:
        REFERENCES.get(n)  # an unknown name is a ConfigError with a 'did you mean'
    planned, absent = [], []
    for name in names:
        ref = REFERENCES.create(name)
        if ref.inputs in MODALITY_KINDS:
            groups: list[str | None] = [
                m for m in table.modalities() if table.groups[m].kind == ref.inputs
            ]
            if not groups:
                continue  # no modality of this kind: nothing to say
        else:
            groups = [None]
        for g in groups:
            label = ref.label(g, task)
            why = ref.unavailable(table, g, task)
            if why:
                absent.append({"name": name, "label": label, "kind": ref.kind, "why": why})
                continue
            prefix = "probe" if ref.kind == "probe" else "ref"
            eid = f"{prefix}_{name}" + (f"_{g}" if g else "")
            mods = (g,) if g else tuple(table.modalities())
            planned.append(
                Planned(Entry(eid, label, ref.kind, name, mods, {"reference": name}), ref, g)
            )
    # Stacking needs the per-modality references fitted first.
    planned.sort(key=lambda p: p.reference.needs_base)
    return planned, absent


def run(
    cfg: Config,
    planned: list[Planned],
    table: Any,
    reps: list[Replicate],
    out_dir: Path,
    task: str,
    metric: str,
    console: Console,
) -> tuple[dict[str, list[Job]], dict[str, str]]:
    """Fit every planned reference on every distinct split; run folders and failures."""
    from fusiondx.data.labelling import label_cases
    from fusiondx.data.splits import patient_groups

    jobs: dict[str, list[Job]] = {p.entry.id: [] for p in planned}
    failed: dict[str, str] = {}
    distinct = reps if reps[0].fold is not None else reps[:1]  # seeds share one split
    patients = cfg.data.patient_column
    for rep in distinct:
        lab = label_cases(load_config(_everything(cfg, out_dir, rep)))
        info = next(t for t in lab.tasks if t.name == task)
        y = lab.targets[task]
        split = lab.split
        if not np.array_equal(lab.ids.to_numpy().astype(str), table.ids):
            raise ValueError("the reference table and the split list different cases")
        groups = patient_groups(lab.df, patients, lab.ids)[0]
        balanced = next(t for t in cfg.tasks if t.name == task).class_weights == "balanced"
        best: dict[str, tuple[Any, dict[str, Any], float]] = {}
        for p in planned:
            run_dir = out_dir / "runs" / p.entry.id / rep.name
            job = Job(
                p.entry,
                rep,
                {"output_dir": str(run_dir.parent), "name": rep.name, "tasks": [{"name": task}]},
            )
            spec = _spec(p, info, metric, split, y, table, cfg.seed, cfg.posthoc.model_dump())
            try:
                metrics = _cached(run_dir, spec)
                if metrics is None:
                    base = (
                        {g: (r, prm) for g, (r, prm, _) in best.items()}
                        if p.reference.needs_base
                        else None
                    )
                    metrics = _fit(
                        p,
                        table,
                        info,
                        y,
                        split,
                        metric,
                        cfg.seed,
                        balanced,
                        groups,
                        base,
                        run_dir,
                        spec,
                        cfg.posthoc,
                    )
            except Exception as exc:  # noqa: BLE001  (one reference failing must not stop the study)
                failed[str(run_dir)] = f"{type(exc).__name__}: {exc}"
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "error.txt").write_text(failed[str(run_dir)])
                console.print(
                    f"[red]{p.entry.label} ({rep.name}) failed[/]: {failed[str(run_dir)]}"
                )
                continue
            jobs[p.entry.id].append(job)
            score = (metrics["val"][task] or {}).get(metric)
            if (
                p.group is not None
                and p.reference.kind == "reference"
                and _finite(score)
                and (p.group not in best or score > best[p.group][2])
            ):
                best[p.group] = (p.reference, metrics["params"], float(score))
            console.print(
                f"  {p.entry.label} ({rep.name}): val {metric} {_fmt(score)}, "
                f"{metrics['train_seconds']:.0f} s",
                highlight=False,
            )
    return {k: v for k, v in jobs.items() if len(v) == len(distinct)}, failed


def _fit(
    p: Planned,
    table: Any,
    info: TaskInfo,
    y: np.ndarray,
    split: np.ndarray,
    metric: str,
    seed: int,
    balanced: bool,
    groups: np.ndarray | None,
    base: Any,
    run_dir: Path,
    spec: str,
    posthoc: PosthocConfig | None = None,
) -> dict[str, Any]:
    fitted = p.reference.fit(table, p.group, info, y, split, metric, seed, balanced, groups, base)
    run_dir.mkdir(parents=True, exist_ok=True)
    outputs = {"val": fitted.val, "test": fitted.test}
    post, head = _posthoc(posthoc, info, outputs, y[split == "val"], run_dir)
    frames, scored = [], {}
    for s, out in outputs.items():
        frame, scored[s] = _scored(info, table.ids[split == s], s, y[split == s], out, post, head)
        frames.append(frame)
    pd.concat(frames).to_csv(run_dir / "predictions.csv", index=False)
    pd.DataFrame({"case_id": table.ids, "split": split}).to_csv(run_dir / "splits.csv", index=False)
    metrics = {
        "name": p.entry.id,
        "reference": p.entry.fusion,
        "kind": p.entry.kind,
        "spec": spec,
        "params": fitted.params,
        "n_features": fitted.n_features,
        "n_parameters": None,
        "flops_per_case": None,
        "train_seconds": round(fitted.seconds, 2),
        "cases": {s: int((split == s).sum()) for s in ("train", "val", "test")},
        "val": {info.name: scored["val"]},
        "test": {info.name: scored["test"]},
    }
    from fusiondx.engine.rundir import write_json

    write_json(run_dir / "metrics.json", metrics)
    return metrics


def _posthoc(
    cfg: PosthocConfig | None,
    info: TaskInfo,
    outputs: dict[str, np.ndarray],
    y_val: np.ndarray,
    run_dir: Path,
) -> tuple[Any, Any]:
    """A reference's post-hoc layer, as a neural run's: fitted on its validation probabilities
    (classification only), written to its posthoc.json; (None, None) without one."""
    from fusiondx.engine import posthoc as ph
    from fusiondx.engine.rundir import write_json

    if cfg is None or not ph.applies(info):
        return None, None
    head = ph.ProbabilityHead(info.type)
    state = ph.fit_posthoc(
        cfg, [info], {info.name: head}, {info.name: head.logits(outputs["val"])}, {info.name: y_val}
    )
    write_json(run_dir / "posthoc.json", state)
    return ph.Posthoc(state), head


def _scored(
    info: TaskInfo,
    ids: np.ndarray,
    split: str,
    y: np.ndarray,
    out: np.ndarray,
    post: Any,
    head: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A reference's predictions table and metrics on one split, post-hoc layer applied."""
    from fusiondx.references._base import metrics_of

    if post is None:
        return reference_frame(info, ids, split, y, out), metrics_of(info, y, out)
    raw = {info.name: head.logits(out)}
    calibrated = post.calibrate(raw)[info.name]
    probs = head.to_probs(calibrated.float()).double().numpy()
    probs = probs[:, 0] if info.type == "binary" else probs
    frame = post.columns(
        reference_frame(info, ids, split, y, probs), info, head, raw[info.name], raw_probs=out
    )
    metrics = post.task_metrics(info, head, raw[info.name], calibrated, y, raw_probs=out)
    return frame, metrics


def _cached(run_dir: Path, spec: str) -> dict[str, Any] | None:
    """A finished fit of the very same reference, data and split (a rerun of the study)."""
    path = run_dir / "metrics.json"
    if not (path.is_file() and (run_dir / "predictions.csv").is_file()):
        return None
    metrics = json.loads(path.read_text())
    return metrics if metrics.get("spec") == spec else None


def _spec(
    p: Planned,
    info: TaskInfo,
    metric: str,
    split: np.ndarray,
    y: np.ndarray,
    table: Any,
    seed: int,
    posthoc: dict[str, Any] | None = None,
) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                p.entry.id,
                p.reference.get_config(),
                info.name,
                info.type,
                list(info.classes),
                metric,
                seed,
                sorted(table.groups),
                posthoc,
            ],
            default=str,
        ).encode()
    )
    for a in (split.astype(str), np.asarray(y, dtype=np.float64)):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(table.fingerprint.encode())
    return h.hexdigest()[:20]


def _everything(cfg: Config, out_dir: Path, rep: Replicate) -> dict[str, Any]:
    everything = Entry(
        "data", "data", "fusion", BASELINE_FUSION, tuple(m.name for m in cfg.modalities)
    )
    return run_config(cfg, everything, rep, out_dir, None)


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and bool(np.isfinite(x))


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if _finite(x) else "n/a"
