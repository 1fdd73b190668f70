"""Multiclass and multilabel tasks, and several tasks at once, end to end."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

import fusiondx


def test_multiclass_and_multilabel_together(quick_config: dict[str, Any]) -> None:
    quick_config["tasks"] = [
        {"name": "subtype", "label": "subtype"},
        {"name": "findings", "label": "findings", "type": "multilabel", "label_separator": ";"},
    ]
    quick_config["fusion"]["name"] = "late_average"
    res = fusiondx.fit(quick_config)
    metrics = json.loads((res.run_dir / "metrics.json").read_text())["test"]
    assert set(metrics) == {"subtype", "findings"}
    assert len(metrics["subtype"]["confusion_matrix"]) == 4  # none, pulmonary, cardiac, mixed
    preds = pd.read_csv(res.run_dir / "predictions.csv")
    assert {"subtype_prob_cardiac", "findings_prob_nodule", "findings_pred"} <= set(preds.columns)
    probs = preds[[c for c in preds.columns if c.startswith("subtype_prob_")]].sum(axis=1)
    assert probs.round(4).eq(1.0).all()


def test_balanced_class_weights_are_saved_with_the_run(quick_config: dict[str, Any]) -> None:
    quick_config["tasks"][0]["class_weights"] = "balanced"
    res = fusiondx.fit(quick_config)
    state = json.loads((res.run_dir / "preprocessing.json").read_text())
    w = state["class_weights"]["diagnosis"]
    assert len(w) == 2 and w[1] > w[0]  # disease is the rarer class
