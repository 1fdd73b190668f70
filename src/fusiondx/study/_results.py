"""The study's results: every entry summarised, the winner compared with the best single model
and reference, the verdict, ablation and robustness, in one dict that is written as
``results.json`` (with :func:`json_clean`) and rendered into the report and tables."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.config import Config
from fusiondx.engine.fairness import frame_fairness
from fusiondx.study import analysis
from fusiondx.study.calibration import calibration_results, threshold_note
from fusiondx.study.explanations import explanations
from fusiondx.study.plan import anchors
from fusiondx.study.robustness import robustness
from fusiondx.study.samples import samples
from fusiondx.study.verdict import decide
from fusiondx.tasks import task_type


def build_results(
    cfg: Config,
    out_dir: Path,
    loaded: dict[str, analysis.EntryData],
    info: Any,
    task: str,
    metric: str,
    winner: str,
    best_single: str,
    data: dict[str, Any],
    pooled: bool,
    absent: list[dict[str, str]],
) -> dict[str, Any]:
    """The results dict of a study from its loaded entries (see the report for its use)."""
    n_boot = cfg.study.n_boot
    entries = [analysis.summarise(d, info, n_boot) for d in loaded.values()]
    flags = analysis.learning_flags(loaded, info)
    for e in entries:
        e["flags"] = flags.get(e["id"], [])
    entries.sort(key=lambda e: -_nan_low(e["test"][metric]["mean"]))
    by_id = {e["id"]: e for e in entries}
    best_reference = analysis.choose(loaded, ("reference",), task, metric)
    w, b = loaded[winner], loaded[best_single]
    # Sensitivity only: the best single modality and reference on test (entries are sorted by it).
    on_test = next((e["id"] for e in entries if e["kind"] == "single"), best_single)
    ref_on_test = next((e["id"] for e in entries if e["kind"] == "reference"), best_reference)

    def versus(other: str | None) -> dict[str, Any] | None:
        return (
            None if other is None else analysis.comparison(w, loaded[other], info, metric, n_boot)
        )

    comparisons = {
        "single": versus(best_single),
        "reference": versus(best_reference),
        "single_on_test": versus(on_test) if on_test != best_single else None,
        "reference_on_test": versus(ref_on_test) if ref_on_test != best_reference else None,
    }
    reps = w.jobs
    results: dict[str, Any] = {
        "study": {
            "name": cfg.name,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "task": task,
            "task_type": info.type,
            "classes": list(info.classes),
            "primary_metric": metric,
            "seeds": None if pooled else [j.rep.seed for j in reps],
            "folds": len(reps) if pooled else None,
            "n_boot": n_boot,
            "n_test": len(w.case_ids),
            "selection": f"val/{metric}",
            "config_yaml": cfg.to_yaml(),
            "results_path": str(out_dir / "results.json"),
            "threshold": threshold_note(loaded, info, winner),
        },
        "data": data,
        "entries": entries,
        "winner": winner,
        "best_single": best_single,
        "best_reference": best_reference,
        "best_single_on_test": on_test,
        "comparison": comparisons["single"],
        "comparisons": comparisons,
        "references_absent": absent,
        "verdict": decide(
            by_id, metric, winner, best_single, best_reference, comparisons, absent, flags
        ),
        "curves": (
            {winner: analysis.curves(w), best_single: analysis.curves(b)}
            if task_type(info).curves
            else None
        ),
        "confusion_matrix": analysis.confusion(w, info),
        "samples": samples(w, b, info, cfg),
        "ablation": None,
        "robustness": None,
        "fairness": study_fairness(cfg, loaded, info, (winner, best_single)),
        "calibration": calibration_results(loaded, info, winner),
        "explain": None,
        "training_curves": {
            k: analysis.training_curves(loaded[k].jobs[0].run_dir, task, metric)
            for k in (winner, best_single)
        },
    }
    mods = list(w.entry.modalities)
    without = {m: loaded.get(f"ablation_{w.entry.fusion}_minus_{m}") for m in mods}
    if cfg.study.ablation and any(without.values()):

        def ci(eid: str) -> dict[str, Any]:
            return {
                **{k: by_id[eid]["test"][metric][k] for k in ("mean", "low", "high")},
                "id": eid,
            }

        results["ablation"] = {
            "entry": winner,
            "metric": metric,
            "full": ci(winner),
            "without": {m: ci(d.entry.id) for m, d in without.items() if d is not None},
            "only": {m: ci(f"single_{m}") for m in mods if f"single_{m}" in by_id},
        }
    if cfg.study.robustness:
        removed, rates = {}, {}
        for eid in dict.fromkeys([winner, best_single]):
            # An image that boxes or masks are drawn on cannot be taken away (the heads read it).
            kept = [m for m in mods if m not in anchors(cfg)]
            removed[eid], rates[eid] = robustness(
                loaded[eid],
                info,
                metric,
                kept,
                cfg.study.missing_rates,
                pooled,
                by_id[eid]["test"][metric]["mean"],
            )
        results["robustness"] = {"metric": metric, "removed": removed, "missing_rate": rates}
    if cfg.study.explain:
        results["explain"] = explanations(
            loaded, [winner, best_single], info, metric, seed=cfg.seed
        )
    return results


def study_fairness(
    cfg: Config, loaded: dict[str, analysis.EntryData], info: Any, ids: tuple[str, ...]
) -> dict[str, Any] | None:
    """The subgroup tables (``fairness.columns``) of these entries' test predictions, pooled
    over their seeds; None when the config lists no fairness columns."""
    if not cfg.fairness.columns:
        return None
    return {
        "columns": list(cfg.fairness.columns),
        "min_size": cfg.fairness.min_size,
        "entries": {
            eid: frame_fairness(loaded[eid].frames, info, cfg.fairness, n_boot=cfg.study.n_boot)
            for eid in dict.fromkeys(ids)
        },
    }


def _nan_low(x: float) -> float:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else -np.inf


def json_clean(x: Any) -> Any:
    """JSON without NaN/Infinity (null instead) and with numpy scalars as plain numbers."""
    if isinstance(x, dict):
        return {str(k): json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
