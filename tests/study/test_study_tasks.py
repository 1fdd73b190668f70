"""The study on tasks beyond classification: baselines that fit the task, case-bootstrap CIs, samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config import load_config
from fusiondx.data.targets import TaskInfo
from fusiondx.evaluation.survival import concordance_index
from fusiondx.study import casewise
from fusiondx.study.plan import main_entries, resolve_strategies
from fusiondx.study.study import run_study


def _cfg(quick_config: dict[str, Any], task: dict[str, Any], strategies: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(quick_config)
    cfg["tasks"] = [task]
    cfg["study"] = {"strategies": strategies, "seeds": 1, "n_boot": 200, "ablation": True,
                    "missing_rates": [0.0, 1.0]}
    return cfg


def test_localization_study_keeps_the_image_in_every_model(quick_config: dict[str, Any], tmp_path: Path) -> None:
    cfg = _cfg(quick_config, {"name": "lesion", "head": "localization", "label": "lesion_box"}, ["concat"])
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


def test_all_strategies_for_a_box_task_leave_out_late_and_early_fusion(quick_config: dict[str, Any]) -> None:
    cfg = load_config(_cfg(quick_config, {"name": "lesion", "head": "localization", "label": "lesion_box"}, "all"))
    names = resolve_strategies(cfg, None)
    assert "concat" in names and "late_average" not in names and "early_concat" not in names


def test_generation_study_has_a_decoder_without_context(quick_config: dict[str, Any]) -> None:
    cfg = load_config(_cfg(quick_config, {"name": "findings", "head": "generation", "label": "findings_text"},
                           ["concat"]))
    entries = {e.id: e for e in main_entries(cfg, ["concat"])}
    assert {"single_cxr", "single_ecg", "single_report", "single_labs", "single_nocontext"} <= set(entries)
    assert entries["single_nocontext"].options["head_options"]["findings"]["context"] == "none"


def test_case_bootstrap_of_a_pairwise_metric(tmp_path: Path) -> None:
    info = TaskInfo("f", "survival", (), ("t", "e"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"f_risk": rng.normal(size=60), "f_time": rng.uniform(1, 100, 60),
                          "f_event": rng.integers(0, 2, 60)})
    per_seed = [casewise.scorers(frame, info)]
    ci = casewise.pooled_ci("c_index", per_seed, 60, casewise.strata(frame, info), n_boot=300)
    exact = concordance_index(frame["f_risk"].to_numpy(), frame["f_time"].to_numpy(), frame["f_event"].to_numpy())
    assert np.isclose(ci["mean"], exact) and ci["low"] < exact < ci["high"]
    same = casewise.paired_difference("c_index", per_seed, per_seed, 60, None, n_boot=200)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    json.dumps(ci)


def test_case_bootstrap_of_text_scores_the_written_words() -> None:
    import shutil

    from fusiondx.evaluation.text import text_metrics

    info = TaskInfo("f", "text", (), ("findings",))
    rng = np.random.default_rng(1)
    words = ["the", "heart", "is", "normal", "lungs", "are", "clear", "no", "effusion", "mild",
             "cardiomegaly", "[UNK]", "."]
    true = [" ".join(rng.choice(words, rng.integers(3, 12))) for _ in range(30)]
    pred = [" ".join(t.split()[: rng.integers(1, 12)][::-1]) for t in true]
    true[4] = None  # a case without a reference
    frame = pd.DataFrame({"f_true": true, "f_pred": pred})
    per_seed = [casewise.scorers(frame, info)]
    assert set(per_seed[0]) == set(casewise.metric_names(info)) >= {"bleu4", "rouge_l", "cider", "meteor"}
    keep = [i for i in range(30) if i != 4]
    exact = text_metrics([pred[i] for i in keep], [true[i] for i in keep], unk="[UNK]")
    for m in ("bleu4", "rouge_l", "cider"):
        ci = casewise.pooled_ci(m, per_seed, 30, None, n_boot=200)
        assert np.isclose(ci["mean"], exact[m], rtol=1e-12) and ci["low"] <= exact[m] <= ci["high"]
    if shutil.which("java") is not None:
        ci = casewise.pooled_ci("meteor", per_seed, 30, None, n_boot=200)
        assert np.isclose(ci["mean"], exact["meteor"], rtol=1e-12) and 0 < ci["low"] <= ci["high"] < 1


def test_study_metric_of_generation_may_be_cider_but_not_meteor(quick_config: dict[str, Any]) -> None:
    import pytest

    from fusiondx.errors import ConfigError
    from fusiondx.study.study import study_metric

    cfg = _cfg(quick_config, {"name": "findings", "head": "generation", "label": "findings_text"}, ["concat"])
    assert study_metric(load_config(cfg), "findings") == "bleu4"
    cfg["study"]["metric"] = "cider"
    assert study_metric(load_config(cfg), "findings") == "cider"
    cfg["study"]["metric"] = "meteor"
    with pytest.raises(ConfigError, match="written reports") as err:
        study_metric(load_config(cfg), "findings")
    assert "cider" in str(err.value) and "meteor" not in str(err.value).split("use one of")[-1]
