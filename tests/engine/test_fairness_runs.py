"""Fairness columns in a run: read from the manifest, written into the predictions, scored by
``evaluate``; and the clear errors when the manifest lacks them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fusiondx.config import load_config
from fusiondx.data.groups import case_groups
from fusiondx.data.labelling import label_cases
from fusiondx.errors import DataError

FAIRNESS = {
    "columns": ["sex", "age_band", "site"],
    "min_size": 5,
    "bands": {"age_band": {"column": "age", "edges": [40, 65]}},
}


def test_an_absent_fairness_column_names_the_manifest_and_its_columns(
    quick_config: dict[str, Any],
) -> None:
    quick_config["fairness"] = {"columns": ["sex", "ethnicity"]}
    cfg = load_config(quick_config)
    with pytest.raises(DataError) as err:
        label_cases(cfg)
    text = str(err.value)
    assert "'ethnicity'" in text and "fairness.columns" in text
    assert "manifest.csv" in text and "case_id, patient_id, site, sex, age" in text


def test_a_band_of_a_column_that_is_not_numeric_names_the_row(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    df = pd.read_csv(quick_config["data"]["manifest"], dtype=str)
    df.loc[3, "age"] = "fifty"
    quick_config["fairness"] = FAIRNESS
    cfg = load_config(quick_config)
    with pytest.raises(DataError) as err:
        case_groups(cfg, df, tmp_path / "m.csv")
    text = str(err.value)
    assert "'fifty' is not a number" in text and "age" in text and df.loc[3, "case_id"] in text


def test_bands_and_blanks(quick_config: dict[str, Any], tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "case_id": list("abcdef"),
            "age": ["39.9", "40", "64", "65", None, "90"],
            "sex": ["F"] * 5 + [None],
        }
    )
    quick_config["fairness"] = {
        "columns": ["sex", "age_band"],
        "bands": {"age_band": {"column": "age", "edges": [40, 65]}},
    }
    g = case_groups(load_config(quick_config), df, tmp_path / "m.csv")
    assert g["age_band"].tolist() == ["<40", "40-64", "40-64", ">=65", "missing", ">=65"]
    assert g["sex"].tolist() == ["F"] * 5 + ["missing"]


def test_evaluate_scores_every_subgroup_and_predict_needs_no_group_column(
    quick_config: dict[str, Any], tmp_path: Path, one_thread: Any
) -> None:
    from fusiondx.engine.run import evaluate, fit, predict

    quick_config["fairness"] = FAIRNESS
    quick_config["train"]["epochs"] = 1
    cfg = load_config(quick_config)
    result = fit(cfg)
    preds = pd.read_csv(result.run_dir / "predictions.csv", dtype=str)
    manifest = pd.read_csv(cfg.data.manifest, dtype=str).set_index("case_id")
    assert (
        preds["group:site"].to_numpy() == manifest.loc[preds["case_id"], "site"].to_numpy()
    ).all()
    assert set(preds["group:age_band"]) <= {"<40", "40-64", ">=65", "missing"}
    # Not a model input: no modality's fitted preprocessing mentions the subgroup columns.
    spec = json.loads((result.run_dir / "preprocessing.json").read_text())["specs"]
    assert "site" not in json.dumps(spec)

    ev = evaluate(result.run_dir, progress=False).metrics
    saved = json.loads(Path(ev["written"]).read_text())
    table = saved["fairness"]["diagnosis"]
    assert table["positive"] == "disease" and set(table["columns"]) == {"sex", "age_band", "site"}
    sex = table["columns"]["sex"]
    assert {r["group"] for r in sex["groups"]} == {"F", "M"}
    assert sum(r["n"] for r in sex["groups"]) == saved["cases"]
    for r in sex["groups"]:
        auroc = r["metrics"]["auroc"]
        assert auroc is None or auroc["low"] <= auroc["mean"] <= auroc["high"]

    # predict: a manifest without the fairness columns is fine (no labels, no subgroups).
    new = tmp_path / "new.csv"
    manifest.reset_index().drop(columns=["site", "label"]).head(12).to_csv(new, index=False)
    out = predict(result.run_dir, new, tmp_path / "p.csv", root=cfg.data.data_root, progress=False)
    assert not [c for c in out.columns if c.startswith("group:")] and len(out) == 12
    assert np.isfinite(out["diagnosis_prob_disease"].to_numpy(float)).all()
