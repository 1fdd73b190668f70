"""The model card of a trained run (Mitchell et al., 2019, "Model Cards for Model Reporting"):
what it predicts, the inputs it expects, the data it learned from, how well it did on its test
cases (with bootstrap 95% intervals where the predictions allow), by subgroup where measured,
and what it is and is not for. ``GET /model`` answers it as JSON; ``fusiondx export`` writes it
as ``MODEL_CARD.md`` beside the ONNX file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from fusiondx.engine.rundir import RunDir

SCALARS = ("auroc", "auprc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1")
N_BOOT = 1000

INTENDED_USE = (
    "Decision support for a clinician reviewing one case at a time: the model's probability, "
    "its uncertainty (the conformal set; 'refer' when it is not a single class) and which "
    "inputs moved it. Not a diagnosis, not for use without a clinician, and not for a "
    "population, scanner, site or protocol unlike the training data."
)
LIMITS = [
    "Measured on the run's own held-out test split only: performance elsewhere is unknown "
    "until `fusiondx evaluate RUN --data NEW.csv` measures it there.",
    "Probabilities are calibrated on the validation split; the stored threshold and conformal "
    "sets assume new cases resemble it.",
    "A missing modality is allowed (the fusion is trained with masks) but lowers what the "
    "model knows; the per-modality contributions show what each present input did.",
    "Grad-CAM overlays show where the image encoder looked, not why; they are not a segmentation.",
]


def model_card(run_dir: Path) -> dict[str, Any]:
    """The model card of ``run_dir`` (see the module docstring)."""
    run = RunDir(Path(run_dir))
    cfg = run.config()
    state = run.preprocessing()
    metrics = _json(run.metrics_file) or {}
    posthoc = run.posthoc() or {}
    tasks = []
    for t in state["tasks"]:
        entry = (posthoc.get("tasks") or {}).get(t["name"]) or {}
        conformal = entry.get("conformal") or {}
        tasks.append(
            {
                "name": t["name"],
                "type": t["type"],
                "classes": list(t.get("classes") or []),
                "threshold": (entry.get("threshold") or {}).get("values"),
                "threshold_rule": (entry.get("threshold") or {}).get("rule"),
                "calibration": (entry.get("calibration") or {}).get("method", "none"),
                "conformal_coverage": conformal.get("coverage"),
            }
        )
    return {
        "name": cfg.name,
        "run": run.path.name,
        "tasks": tasks,
        "inputs": inputs(cfg, state),
        "model": {
            "fusion": metrics.get("fusion", cfg.fusion.name),
            "parameters": metrics.get("n_parameters"),
            "flops_per_case": metrics.get("flops_per_case"),
            "best_epoch": metrics.get("best_epoch"),
        },
        "training_data": training_data(run, cfg, state, metrics),
        "test_metrics": test_metrics(run, metrics, state["tasks"]),
        "subgroups": _subgroups(run, metrics),
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
    }


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def inputs(cfg: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Per modality: the form field(s) and what each expects (the page builds its form from it)."""
    from fusiondx.serving.formats import IMAGE_FORMATS, SIGNAL_FORMATS

    out = []
    for m in cfg.modalities:
        p = m.preprocessing
        entry: dict[str, Any] = {"name": m.name, "kind": m.kind, "encoder": m.encoder_name}
        if m.kind == "image":
            size = "x".join(str(s) for s in p.size)
            entry["expects"] = (
                f"one image file ({IMAGE_FORMATS}); read as {p.channels} channel(s), resized to {size}"
            )
        elif m.kind == "signal":
            leads = state["preprocessors"][m.name].get("n_leads")
            rate = f"resampled to {p.rate:g} Hz" if p.rate else "at its own rate"
            entry["expects"] = (
                f"one signal record ({SIGNAL_FORMATS}); {leads} lead(s), {rate}, "
                f"{p.length} samples kept"
            )
        elif m.kind == "text":
            entry["expects"] = f"free text (the first {p.max_length} tokens are read)"
        else:
            st = state["preprocessors"][m.name]
            numeric = [c for c in m.columns if c not in m.categorical]
            cols = []
            for c in m.columns:
                if c in m.categorical:
                    cols.append(
                        {"name": c, "type": "category", "categories": st["vocab"].get(c, [])}
                    )
                else:
                    j = numeric.index(c)
                    cols.append(
                        {
                            "name": c,
                            "type": "number",
                            "train_mean": st["mean"][j],
                            "train_std": st["std"][j],
                        }
                    )
            entry["columns"] = cols
            entry["expects"] = (
                "one value per column (a field each, or one JSON object in the field "
                f"'{m.name}'); any may be left empty (missing)"
            )
        out.append(entry)
    return out


def training_data(
    run: RunDir, cfg: Any, state: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """Cases per split and, where the manifest is still there, the class balance per split."""
    out: dict[str, Any] = {"cases": metrics.get("cases"), "manifest": Path(cfg.data.manifest).name}
    try:
        df = pd.read_csv(cfg.data.manifest, sep=cfg.data.sep, dtype=str)
        splits = pd.read_csv(run.splits_file, dtype=str).set_index("case_id")["split"]
    except (OSError, ValueError, KeyError):
        out["class_balance"] = None
        return out
    df["_split"] = df[cfg.data.id_column].map(splits)
    balance: dict[str, Any] = {}
    for t in state["tasks"]:
        label = (t.get("label") or [None])[0]
        if t["type"] not in ("binary", "multiclass") or label not in df.columns:
            continue
        balance[t["name"]] = {
            str(s): {str(k): int(v) for k, v in g[label].value_counts().sort_index().items()}
            for s, g in df.dropna(subset=["_split"]).groupby("_split")
        }
    out["class_balance"] = balance or None
    return out


def test_metrics(
    run: RunDir, metrics: dict[str, Any], tasks: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each task's test metrics; binary AUROC with a stratified bootstrap 95% interval over the
    test cases of ``predictions.csv`` (AUROC ranks the probabilities before calibration)."""
    out: dict[str, Any] = {}
    test = metrics.get("test") or {}
    try:
        preds = pd.read_csv(run.predictions_file)
        preds = preds[preds["split"] == "test"]
    except (OSError, ValueError, KeyError):
        preds = None
    for t in tasks:
        m = test.get(t["name"]) or {}
        row: dict[str, dict[str, Any]] = {k: {"value": _num(m[k])} for k in SCALARS if k in m}
        if (
            preds is not None
            and t["type"] == "binary"
            and "auroc" in row
            and len(t.get("classes") or []) == 2
        ):
            ci = auroc_ci(preds, t)
            if ci is not None:
                row["auroc"]["ci95"] = ci
        if "conformal" in m:
            row["conformal_coverage"] = {"value": _num(m["conformal"].get("coverage"))}
            row["referred"] = {"value": _num(m["conformal"].get("referred"))}
        out[t["name"]] = {"cases": (metrics.get("cases") or {}).get("test"), "metrics": row}
    return out


def auroc_ci(preds: pd.DataFrame, task: dict[str, Any]) -> list[float] | None:
    """Stratified percentile bootstrap 95% interval of the test AUROC (fixed seed), scored as
    the study scores it (the task type's case scorer over ``predictions.csv``)."""
    from fusiondx.evaluation.bootstrap import pooled_ci
    from fusiondx.tasks import TaskInfo, task_type

    info = TaskInfo.from_dict(task)
    tt = task_type(info)
    try:
        scorer = tt.case_scores(info, preds)["auroc"]
        ci = pooled_ci([scorer], len(preds), tt.strata(info, preds), n_boot=N_BOOT)
    except (KeyError, ValueError):  # a table without this task's columns
        return None
    if not (math.isfinite(ci["low"]) and math.isfinite(ci["high"])):
        return None
    return [float(ci["low"]), float(ci["high"])]


def _subgroups(run: RunDir, metrics: dict[str, Any]) -> Any:
    evaluated = _json(run.evaluations / "test.json") or {}
    return metrics.get("fairness") or evaluated.get("fairness")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (``MODEL_CARD.md``)."""
    lines = [f"# Model card: {card['name']}", ""]
    lines += ["## What it predicts", ""]
    for t in card["tasks"]:
        if not t["classes"]:  # no classes: no calibration, threshold or prediction set
            how = "written word by word by the PyTorch model" if t["type"] == "text" else "a value"
            lines.append(f"- **{t['name']}** ({t['type']}; {how})")
            continue
        classes = ", ".join(t["classes"])
        lines.append(
            f"- **{t['name']}** ({t['type']}; classes: {classes}); calibration: "
            f"{t['calibration']}; threshold: {t['threshold'] or 'argmax / 0.5'}"
            + (
                f"; conformal sets at {t['conformal_coverage']:g} coverage"
                if t["conformal_coverage"]
                else ""
            )
        )
    lines += ["", "## Inputs", "", "| input | kind | expects |", "|---|---|---|"]
    for m in card["inputs"]:
        expects = m["expects"]
        if m.get("columns"):
            cols = ", ".join(
                f"{c['name']} ({'/'.join(c['categories']) if c['type'] == 'category' else 'number'})"
                for c in m["columns"]
            )
            expects += f": {cols}"
        lines.append(f"| {m['name']} | {m['kind']} | {expects} |")
    mdl = card["model"]
    lines += [
        "",
        "## Model",
        "",
        f"Fusion `{mdl['fusion']}`, {mdl['parameters'] or '?'} parameters, "
        f"{mdl['flops_per_case'] or '?'} FLOPs per case.",
        "",
        "## Training data",
        "",
    ]
    data = card["training_data"]
    lines.append(f"Manifest `{data['manifest']}`; cases per split: {data.get('cases')}.")
    for task, by_split in (data.get("class_balance") or {}).items():
        shown = "; ".join(
            f"{s}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for s, c in by_split.items()
        )
        lines.append(f"Class balance of {task}: {shown}.")
    lines += ["", "## Test metrics", ""]
    for task, entry in card["test_metrics"].items():
        lines += [
            f"{task} ({entry['cases']} test cases):",
            "",
            "| metric | value | 95% CI |",
            "|---|---|---|",
        ]
        for name, v in entry["metrics"].items():
            value = "-" if v["value"] is None else f"{v['value']:.3f}"
            ci = f"{v['ci95'][0]:.3f} - {v['ci95'][1]:.3f}" if v.get("ci95") else ""
            lines.append(f"| {name} | {value} | {ci} |")
        lines.append("")
    lines += ["## Subgroups", ""]
    if card["subgroups"]:
        lines += ["```json", json.dumps(card["subgroups"], indent=1, default=str)[:4000], "```"]
    else:
        lines.append(
            "Not measured (set `fairness.columns` in the config and run `fusiondx evaluate`)."
        )
    lines += ["", "## Intended use", "", card["intended_use"], "", "## Limits", ""]
    lines += [f"- {x}" for x in card["limits"]]
    return "\n".join(lines) + "\n"


def write_model_card(run_dir: Path, out: Path) -> Path | None:
    """Write the card of ``run_dir`` as Markdown to ``out``; None (nothing written) when ``out``
    is a file FusionDx did not write (a card of one's own is never replaced)."""
    if out.is_file() and not out.read_text(encoding="utf-8", errors="replace").startswith(
        "# Model card: "
    ):
        return None
    out.write_text(card_markdown(model_card(run_dir)), encoding="utf-8")
    return out
