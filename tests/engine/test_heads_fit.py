"""Every head trains through `fit`, alone and together, and its run can be evaluated and used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx
from fusiondx.engine.run import evaluate, predict

TASKS = {
    "localization": {"name": "lesion", "head": "localization", "label": "lesion_box"},
    "segmentation": {"name": "lesion_mask", "head": "segmentation", "label": "mask"},
    "generation": {
        "name": "findings",
        "head": "generation",
        "label": "findings_text",
        "text": {"max_length": 32},
        "options": {"layers": 1},
    },
    "generation_lstm": {
        "name": "findings",
        "head": "generation",
        "label": "findings_text",
        "text": {"max_length": 32},
        "options": {"decoder": "lstm", "beam_size": 2},
    },
    "survival_discrete": {
        "name": "outcome",
        "head": "survival",
        "label": ["time_to_event", "event"],
        "options": {"method": "discrete"},
    },
    "regression": {"name": "wbc", "head": "regression", "label": "wbc"},
}
METRICS = {
    "localization": {"iou", "detection_rate", "center_error"},
    "segmentation": {"dice", "iou", "dice_lesion", "iou_lesion"},
    "generation": {"bleu1", "bleu4", "rouge_l", "cider", "meteor"},
    "generation_lstm": {"bleu4", "rouge_l"},
    "survival_discrete": {"c_index"},
    "regression": {"mae", "rmse", "r2"},
}


@pytest.mark.parametrize("head", list(TASKS))
def test_each_head_trains_and_reports_its_metrics(quick_config: dict[str, Any], head: str) -> None:
    quick_config["tasks"] = [TASKS[head]]
    quick_config["train"]["epochs"] = 1
    res = fusiondx.fit(quick_config)
    task = TASKS[head]["name"]
    metrics = json.loads((res.run_dir / "metrics.json").read_text())
    assert METRICS[head] <= set(metrics["test"][task])
    values = [v for v in metrics["test"][task].values() if v is not None]
    assert values and all(np.isfinite(values))
    assert metrics["flops_per_case"] > 0
    preds = pd.read_csv(res.run_dir / "predictions.csv")
    assert set(preds["split"]) == {"val", "test"}
    curves = pd.read_csv(res.run_dir / "logs" / "metrics.csv")
    primary = {
        "localization": "iou",
        "segmentation": "dice_lesion",
        "generation": "bleu4",
        "generation_lstm": "bleu4",
        "survival": "c_index",
        "survival_discrete": "c_index",
        "regression": "r2",
    }[head]
    assert f"val/{task}/{primary}" in curves.columns


def test_generated_findings_are_words_of_the_vocabulary(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    quick_config["tasks"] = [TASKS["generation"]]
    quick_config["train"]["epochs"] = 3
    res = fusiondx.fit(quick_config)
    preds = pd.read_csv(res.run_dir / "predictions.csv", keep_default_na=False)
    vocab = {w for t in preds["findings_true"] for w in t.split()}
    written = [w for t in preds["findings_pred"] for w in t.split()]
    assert written and set(written) <= vocab | {"[UNK]"}
    # A trained run answers new cases without labels, and scores another labelled manifest.
    manifest = Path(quick_config["data"]["manifest"])
    out = predict(res.run_dir, manifest, tmp_path / "p.csv", progress=False)
    assert out["findings_pred"].str.len().gt(0).all()
    scored = evaluate(res.run_dir, manifest, progress=False).metrics["metrics"]["findings"]
    assert 0 <= scored["bleu4"] <= 1


def test_several_heads_on_one_model_with_learned_weights(quick_config: dict[str, Any]) -> None:
    quick_config["tasks"] = [
        {"name": "diagnosis", "label": "label"},
        TASKS["localization"],
        {"name": "outcome", "head": "survival", "label": ["time_to_event", "event"]},
    ]
    quick_config["train"]["task_weighting"] = "uncertainty"
    quick_config["train"]["early_stopping"] = {"monitor": "lesion/iou", "patience": 2}
    res = fusiondx.fit(quick_config)
    metrics = json.loads((res.run_dir / "metrics.json").read_text())
    assert metrics["monitor"] == "val/lesion/iou"
    assert set(metrics["test"]) == {"diagnosis", "lesion", "outcome"}
    curves = pd.read_csv(res.run_dir / "logs" / "metrics.csv")
    weights = curves[["weight/diagnosis", "weight/lesion", "weight/outcome"]].to_numpy()
    assert not np.allclose(weights, 1.0)  # the task weights were learned, not left at their start


def test_a_monitor_naming_an_unknown_task_is_refused(quick_config: dict[str, Any]) -> None:
    quick_config["train"]["early_stopping"] = {"monitor": "lesion/iou"}
    with pytest.raises(fusiondx.ConfigError, match="names task 'lesion'"):
        fusiondx.fit(quick_config)
