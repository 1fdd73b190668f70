"""The distillation table: teacher, distilled student and student alone on the shared test split.

Scored as the study scores its entries (:mod:`fusiondx.study.analysis`): each run's test rows of
``predictions.csv``, every metric of the task type with a percentile bootstrap CI over the test
cases (stratified by class, the same replicates for every model), and paired bootstrap
differences of the main metric, distilled minus alone and distilled minus teacher. The
``teacher gap`` is the mean absolute difference between a model's probabilities and the
teacher's on the test cases (before calibration, as the distillation loss sees them): how much
of the teacher the student took in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.engine.rundir import write_json, write_text
from fusiondx.errors import RunError
from fusiondx.evaluation.bootstrap import paired_difference, pooled_ci
from fusiondx.study.analysis import task_info
from fusiondx.tasks import TaskInfo, task_type

MODELS = ("teacher", "distilled", "alone")
NAMES = {"teacher": "teacher", "distilled": "distilled student", "alone": "student alone"}


def _test_frame(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"case_id": str})
    return frame[frame["split"] == "test"].set_index("case_id").sort_index()


def _probs(info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
    tt = task_type(info)
    raw = any(c.startswith(f"{info.name}_prob_raw_") for c in frame.columns)
    p = tt.frame_raw_probs(info, frame) if raw else tt.frame_probs(info, frame)  # type: ignore[attr-defined]
    return np.asarray(p, dtype=np.float64).reshape(len(frame), -1)


def _run_summary(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = _config(run_dir)
    return {
        "run_dir": str(run_dir),
        "modalities": [m["name"] for m in cfg.get("modalities", [])],
        "fusion": metrics.get("fusion"),
        "n_parameters": metrics.get("n_parameters"),
        "flops_per_case": metrics.get("flops_per_case"),
        "train_seconds": metrics.get("train_seconds"),
    }


def _config(run_dir: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}


def compare(
    runs: dict[str, Path], tasks: list[str], *, n_boot: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """The comparison of ``runs`` (keys: :data:`MODELS`) on their shared test cases, per task."""
    out: dict[str, Any] = {
        "settings": settings,
        "n_boot": n_boot,
        "models": {k: _run_summary(Path(v)) for k, v in runs.items()},
        "tasks": {},
    }
    frames = {k: _test_frame(Path(v)) for k, v in runs.items()}
    order = frames["teacher"].index
    for k, f in frames.items():
        if not f.index.equals(order):
            raise RunError(
                f"The {NAMES[k]} was tested on other cases than the teacher "
                f"({len(f)} against {len(order)}).",
                file=Path(runs[k]) / "predictions.csv",
                fix="train the student with the teacher's manifest and split settings",
            )
    n = len(order)
    for task in tasks:
        info = task_info(Path(runs["distilled"]), task)
        tt = task_type(info)
        metric = "auroc" if "auroc" in tt.metrics else tt.metrics[0]
        strata = tt.strata(info, frames["teacher"])
        scores = {k: tt.case_scores(info, f) for k, f in frames.items()}
        teacher_p = _probs(info, frames["teacher"])
        rows: dict[str, dict[str, Any]] = {}
        for k in frames:
            rows[k] = {m: pooled_ci([scores[k][m]], n, strata, n_boot=n_boot) for m in tt.metrics}
            rows[k]["teacher_gap"] = float(np.abs(_probs(info, frames[k]) - teacher_p).mean())

        out["tasks"][task] = {
            "type": info.type,
            "metric": metric,
            "n_test": n,
            "metrics": list(tt.metrics),
            "models": rows,
            **{
                f"distilled_vs_{b}": paired_difference(
                    [scores["distilled"][metric]], [scores[b][metric]], n, strata, n_boot=n_boot
                )
                | {"a": "distilled", "b": b, "metric": metric}
                for b in ("alone", "teacher")
            },
        }
    return out


def _ci(s: dict[str, Any]) -> str:
    if s is None or not np.isfinite(s.get("mean", np.nan)):
        return "n/a"
    return f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"


def _count(x: Any) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:.2f}{unit}"
    return f"{x:.0f}"


def markdown(results: dict[str, Any]) -> str:
    """The table as Markdown: one section per task."""
    s = results["settings"]
    lines = [
        "# Distillation: teacher, distilled student, student alone",
        "",
        f"Distillation loss: alpha {s['alpha']:g} x T^2 x KL(teacher_T || student_T) + "
        f"(1 - alpha) x task loss, temperature T = {s['temperature']:g}. Test metrics with "
        f"95% bootstrap CIs ({results['n_boot']} replicates, stratified by class); "
        "teacher gap: mean |p - p_teacher| on the test cases, before calibration.",
    ]
    models = results["models"]
    for task, t in results["tasks"].items():
        shown = [m for m in ("auroc", "auprc", "f1", "accuracy") if m in t["metrics"]]
        lines += [
            "",
            f"## Task `{task}` ({t['type']}, {t['n_test']} test cases)",
            "",
            "| model | modalities | parameters | FLOPs per case | "
            + " | ".join(m.upper() if m != "accuracy" else "accuracy" for m in shown)
            + " | teacher gap |",
            "|---|---|---|---|" + "---|" * len(shown) + "---|",
        ]
        for k, row in t["models"].items():
            info = models[k]
            lines.append(
                f"| {NAMES[k]} | {', '.join(info['modalities'])} | {_count(info['n_parameters'])} "
                f"| {_count(info['flops_per_case'])} | "
                + " | ".join(_ci(row[m]) for m in shown)
                + f" | {row['teacher_gap']:.3f} |"
            )
        for key, label in (
            ("distilled_vs_alone", "distilled - alone"),
            ("distilled_vs_teacher", "distilled - teacher"),
        ):
            d = t[key]
            lines.append(
                f"\n{label}: {t['metric'].upper()} {d['difference']:+.3f} "
                f"[{d['low']:+.3f}, {d['high']:+.3f}], p = {d['p_value']:.3g} (paired bootstrap)."
            )
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], runs: dict[str, Path], path: Path) -> Path:
    """Per task: the main metric with its CI for the three models, and each student's test
    probabilities against the teacher's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fusiondx.study.plots import PALETTE, STYLE

    tasks = list(results["tasks"])
    colors = dict(zip(MODELS, PALETTE, strict=False))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 4 * len(tasks)), squeeze=False)
        for row, task in zip(axes, tasks, strict=True):
            t = results["tasks"][task]
            ax = row[0]
            for i, k in enumerate(MODELS):
                s = t["models"][k][t["metric"]]
                err = [[s["mean"] - s["low"]], [s["high"] - s["mean"]]]
                ax.bar(i, s["mean"], color=colors[k], width=0.6)
                ax.errorbar(i, s["mean"], yerr=err, color="#333333", capsize=6)
            ax.set_xticks(range(len(MODELS)), [NAMES[k] for k in MODELS])
            ax.set_ylabel(f"test {t['metric'].upper()} (95% CI)")
            ax.set_title(f"{task}: {t['metric'].upper()}")
            ax = row[1]
            info = task_info(Path(runs["distilled"]), task)
            frames = {k: _test_frame(Path(v)) for k, v in runs.items()}
            p_t = _probs(info, frames["teacher"]).ravel()
            for k in ("distilled", "alone"):
                ax.scatter(
                    p_t,
                    _probs(info, frames[k]).ravel(),
                    s=14,
                    alpha=0.7,
                    color=colors[k],
                    label=f"{NAMES[k]} (gap {t['models'][k]['teacher_gap']:.3f})",
                )
            ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
            ax.set_xlabel("teacher probability")
            ax.set_ylabel("student probability")
            ax.set_title(f"{task}: agreement with the teacher (test)")
            ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path


def write_outputs(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """``distill.json``, ``distill.md`` and ``distill.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "distill.json", out_dir / "distill.md", out_dir / "distill.png"]
    write_json(files[0], results)
    write_text(files[1], markdown(results))
    runs = {k: Path(v["run_dir"]) for k, v in results["models"].items()}
    chart(results, runs, files[2])
    return files
