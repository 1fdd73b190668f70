"""The study's label-efficiency and training-missingness protocols, end to end on a tiny cohort."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from fusiondx.cli import app

runner = CliRunner()


def _config(quick: dict[str, Any], tmp: Path) -> Path:
    cfg = copy.deepcopy(quick)
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] in ("cxr", "labs")]
    cfg["train"]["epochs"] = 1
    cfg["study"] = {"seeds": 1, "references": [], "n_boot": 200}
    cfg["pretrain"] = {"objectives": [{"name": "contrastive", "options": {"dim": 8}}]}
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_label_fraction_protocol(quick_config: dict[str, Any], tmp_path: Path) -> None:
    path = _config(quick_config, tmp_path)
    out = tmp_path / "labels"
    res = runner.invoke(
        app, ["study", str(path), "--label-fraction", "0.3,1", "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert [r["fraction"] for r in results["rows"]] == [0.3, 1.0]
    small, full = results["rows"]
    assert small["scratch"]["train_cases"] < full["scratch"]["train_cases"]
    assert small["pretrained"]["train_cases"] == small["scratch"]["train_cases"]
    d = small["difference"]
    assert d["low"] <= d["difference"] <= d["high"]
    # every arm is tested on the same test cases, and the pretrained arm started from the encoders
    runs = sorted((out / "runs").glob("lf*/seed0/metrics.json"))
    tests = {json.loads(p.read_text())["cases"]["test"] for p in runs}
    assert len(runs) == 4 and len(tests) == 1
    pre = [json.loads(p.read_text())["pretrained"] for p in runs if "pretrained" in str(p)]
    assert all(p and set(p) == {"cxr", "labs"} for p in pre)
    assert results["retrieval"]["cxr->labs"]["n"] > 0
    assert "Label efficiency" in (out / "report.html").read_text()
    # a rerun reuses the pretraining and every finished training
    again = runner.invoke(app, ["study", str(path), "--label-fraction", "0.3,1", "--out", str(out)])
    assert again.exit_code == 0 and "Reusing the pretrained encoders" in again.output


def test_train_missing_protocol(quick_config: dict[str, Any], tmp_path: Path) -> None:
    path = _config(quick_config, tmp_path)
    out = tmp_path / "missing"
    res = runner.invoke(
        app,
        [
            "study",
            str(path),
            "--train-missing",
            "0,0.5",
            "--strategies",
            "concat,late_average",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert len(results["entries"]) == 4
    best = results["most_robust"]
    assert best["robustness"] == max(e["robustness"] for e in results["entries"])
    for e in results["entries"]:
        assert e["curves"]["rates"] == results["test_rates"]
        assert set(e["removed"]) == {"none", "cxr", "labs"}
    assert "Most robust" in (out / "report.html").read_text()


def test_protocol_arguments_are_checked(quick_config: dict[str, Any], tmp_path: Path) -> None:
    path = _config(quick_config, tmp_path)
    for args, words in (
        (["--label-fraction", "0,0.5"], "(0, 1]"),
        (["--train-missing", "1"], "[0, 1)"),
        (["--label-fraction", "a,b"], "comma-separated"),
        (["--label-fraction", "0.5", "--train-missing", "0.3"], "one at a time"),
        (["--pretrained", "x.pt"], "--label-fraction"),
    ):
        res = runner.invoke(app, ["study", str(path), *args])
        assert res.exit_code == 2 and words in res.output, (args, res.output)
