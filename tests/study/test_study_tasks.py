"""The study on tasks beyond classification: baselines that fit the task, case-bootstrap CIs, samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config import load_config
from fusiondx.evaluation.bootstrap import paired_difference, pooled_ci
from fusiondx.evaluation.survival import concordance_index
from fusiondx.study.plan import main_entries, resolve_strategies
from fusiondx.study.study import run_study
from fusiondx.tasks import TaskInfo, task_type


def _cfg(quick_config: dict[str, Any], task: dict[str, Any], strategies: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(quick_config)
    cfg["tasks"] = [task]
    cfg["study"] = {
        "strategies": strategies,
        "seeds": 1,
        "n_boot": 200,
        "ablation": True,
        "missing_rates": [0.0, 1.0],
    }
    return cfg


def test_localization_study_keeps_the_image_in_every_model(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = _cfg(
        quick_config, {"name": "lesion", "head": "localization", "label": "lesion_box"}, ["concat"]
    )
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] in ("cxr", "labs")]
    res = run_study(load_config(cfg), tmp_path / "study", progress=False).results
    ids = {e["id"] for e in res["entries"]}
    assert ids == {"single_cxr", "fusion_concat", "ablation_concat_minus_labs"}
    assert res["study"]["primary_metric"] == "iou"
    iou = next(e for e in res["entries"] if e["id"] == "fusion_concat")["test"]["iou"]
    assert iou["low"] <= iou["mean"] <= iou["high"]
    # The table's IoU is the mean per-case IoU of the run's predictions on cases with a box.
    run = Path(next(e for e in res["entries"] if e["id"] == "fusion_concat")["runs"][0]["run_dir"])
    preds = pd.read_csv(run / "predictions.csv").query("split == 'test'")
    assert np.isclose(iou["mean"], preds["lesion_iou"].dropna().mean())
    assert res["samples"]["kind"] == "box" and res["samples"]["figure"].startswith("data:image/png")
    assert "Samples" in (tmp_path / "study" / "report.html").read_text()


def test_all_strategies_for_a_box_task_leave_out_late_and_early_fusion(
    quick_config: dict[str, Any],
) -> None:
    cfg = load_config(
        _cfg(quick_config, {"name": "lesion", "head": "localization", "label": "lesion_box"}, "all")
    )
    names = resolve_strategies(cfg, None)
    assert "concat" in names and "late_average" not in names and "early_concat" not in names


def test_generation_study_has_a_decoder_without_context(quick_config: dict[str, Any]) -> None:
    cfg = load_config(
        _cfg(
            quick_config,
            {"name": "findings", "head": "generation", "label": "findings_text"},
            ["concat"],
        )
    )
    entries = {e.id: e for e in main_entries(cfg, ["concat"])}
    assert {"single_cxr", "single_ecg", "single_report", "single_labs", "single_nocontext"} <= set(
        entries
    )
    assert entries["single_nocontext"].options["head_options"]["findings"]["context"] == "none"


def test_case_bootstrap_of_a_pairwise_metric(tmp_path: Path) -> None:
    info = TaskInfo("f", "survival", (), ("t", "e"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "f_risk": rng.normal(size=60),
            "f_time": rng.uniform(1, 100, 60),
            "f_event": rng.integers(0, 2, 60),
        }
    )
    per_seed = [task_type(info).case_scores(info, frame)["c_index"]]
    ci = pooled_ci(per_seed, 60, task_type(info).strata(info, frame), n_boot=300)
    exact = concordance_index(
        frame["f_risk"].to_numpy(), frame["f_time"].to_numpy(), frame["f_event"].to_numpy()
    )
    assert np.isclose(ci["mean"], exact) and ci["low"] < exact < ci["high"]
    same = paired_difference(per_seed, per_seed, 60, None, n_boot=200)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    json.dumps(ci)
