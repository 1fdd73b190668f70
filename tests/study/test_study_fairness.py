"""A study with ``fairness.columns``: subgroup tables for the winner and the best single model
in results.json, the console and the report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from fusiondx.cli import app


def test_study_scores_the_winner_and_best_single_by_subgroup(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = copy.deepcopy(quick_config)
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] in ("report", "labs")]
    cfg["train"]["epochs"] = 1
    cfg["study"] = {
        "strategies": ["concat"],
        "seeds": 1,
        "references": [],
        "ablation": False,
        "robustness": False,
        "n_boot": 100,
    }
    cfg["fairness"] = {
        "columns": ["sex", "age_band"],
        "min_size": 8,
        "bands": {"age_band": {"column": "age", "edges": [40, 65]}},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    res = CliRunner().invoke(app, ["study", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    fr = r["fairness"]
    assert set(fr["entries"]) == {r["winner"], r["best_single"]}
    n_test = r["study"]["n_test"]
    for table in fr["entries"].values():
        assert set(table["columns"]) == {"sex", "age_band"}
        for col in table["columns"].values():
            assert sum(g["n"] for g in col["groups"]) == n_test
            assert all(g["small"] == (g["n"] < 8) for g in col["groups"])
    assert "Fairness by subgroup" in res.output and "age_band:" in res.output
    page = (out / "report.html").read_text()
    sec = page.split('<section id="fairness">')[1].split("</section>")[0]
    assert "data:image/png;base64," in sec and "<h3>age_band</h3>" in sec
