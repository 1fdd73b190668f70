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
    post = json.loads((res.run_dir / "posthoc.json").read_text())["tasks"]
    for kind in ("subtype_prob_", "subtype_prob_raw_"):  # calibrated, and before calibration
        cols = [f"{kind}{c}" for c in post["subtype"]["classes"]]
        assert preds[cols].sum(axis=1).round(4).eq(1.0).all()
    # The post-hoc layer: vector scaling and sets for multiclass (argmax, no threshold), one
    # temperature and one threshold per label for multilabel (no sets).
    assert post["subtype"]["calibration"]["method"] == "vector"
    assert len(post["subtype"]["calibration"]["scale"]) == 4
    assert post["subtype"]["threshold"]["rule"] == "argmax" and post["subtype"]["conformal"]
    assert (
        len(post["findings"]["calibration"]["temperature"])
        == len(post["findings"]["threshold"]["values"])
        == len(post["findings"]["classes"])
    )
    assert post["findings"]["conformal"] is None and "findings_set" not in preds
    assert preds["subtype_set"].notna().any() and preds["subtype_refer"].dtype == bool
    thr = dict(
        zip(post["findings"]["classes"], post["findings"]["threshold"]["values"], strict=True)
    )
    called = preds["findings_pred"].fillna("none").str.split(";")
    for label, t in thr.items():
        assert (
            called.map(lambda v, lab=label: lab in v) == (preds[f"findings_prob_{label}"] > t)
        ).all()
    assert "threshold" in metrics["findings"] and "conformal" in metrics["subtype"]


def test_balanced_class_weights_are_saved_with_the_run(quick_config: dict[str, Any]) -> None:
    quick_config["tasks"][0]["class_weights"] = "balanced"
    res = fusiondx.fit(quick_config)
    state = json.loads((res.run_dir / "preprocessing.json").read_text())
    w = state["class_weights"]["diagnosis"]
    assert len(w) == 2 and w[1] > w[0]  # disease is the rarer class
