"""The study end to end on the small built-in cohort: what it trains, chooses, writes and resumes."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import load_config
from fusiondx.study.study import run_study

STRATEGIES = ["concat", "late_average"]


def _study_config(quick_config: dict[str, Any], **study: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(quick_config)
    cfg["study"] = {
        "strategies": STRATEGIES,
        "seeds": 2,
        "n_boot": 200,
        "missing_rates": [0.0, 0.5, 1.0],
        **study,
    }
    return cfg


@pytest.fixture(scope="module")
def study(cohort_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import importlib.util

    # The top-level conftest by path: the name `conftest` is shared by several test folders.
    spec = importlib.util.spec_from_file_location(
        "_top_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    top = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top)
    cfg = copy.deepcopy(top.QUICK)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["train"]["epochs"] = 2
    cfg = _study_config(cfg)
    out = tmp_path_factory.mktemp("study")
    return run_study(load_config(cfg), out, progress=False), cfg


def test_study_trains_every_entry_and_writes_its_files(study: Any) -> None:
    res, cfg = study
    out = res.out_dir
    for f in ("results.json", "table.md", "table.csv", "report.html"):
        assert (out / f).is_file(), f
    results = json.loads((out / "results.json").read_text())
    ids = {e["id"] for e in results["entries"]}
    mods = sorted(m["name"] for m in cfg["modalities"])
    assert ids >= {f"single_{m}" for m in mods} | {f"fusion_{s}" for s in STRATEGIES}
    winner = results["winner"]
    assert {f"ablation_{winner.removeprefix('fusion_')}_minus_{m}" for m in mods} <= ids
    neural = [e for e in results["entries"] if e["kind"] in ("single", "fusion", "ablation")]
    for e in neural:
        assert len(e["runs"]) == 2 and e["n_parameters"] > 0 and e["flops_per_case"] > 0
        ci = e["test"]["auroc"]
        assert ci["low"] <= ci["high"] and len(ci["per_seed"]) == 2
        assert ci["mean"] == pytest.approx(np.mean(ci["per_seed"]))
    # scikit-learn references on every modality and on all of them, fitted once on the same split
    refs = {e["id"]: e for e in results["entries"] if e["kind"] == "reference"}
    assert {
        "ref_hgb_labs",
        "ref_logistic_labs",
        "ref_tfidf_report",
        "ref_pixels_cxr",
        "ref_signal_features_ecg",
        "ref_all_features",
        "ref_stacked",
    } <= set(refs)
    for e in refs.values():
        assert (
            len(e["runs"]) == 1
            and e["n_parameters"] is None
            and 0 <= e["test"]["auroc"]["mean"] <= 1
        )
        tested = pd.read_csv(Path(e["runs"][0]["run_dir"]) / "predictions.csv").query(
            "split == 'test'"
        )
        assert len(tested) == results["study"]["n_test"]
    assert results["best_reference"] == max(refs.values(), key=lambda e: e["val"]["auroc"])["id"]
    assert "probe_presence" in ids  # the cohort has missing modalities to learn from
    absent = {a["name"]: a["why"] for a in results["references_absent"]}
    assert "metadata_columns" in absent["metadata"]  # none configured
    v = results["verdict"]
    assert v["headline"] and v["tone"] in ("good", "meh", "bad")
    assert v["fusion_helps"] == (
        results["comparisons"]["single"]["low"] > 0
        and results["comparisons"]["reference"]["low"] > 0
    )
    # entries are ranked by the test primary metric, best first
    means = [e["test"]["auroc"]["mean"] for e in results["entries"]]
    assert means == sorted(means, reverse=True)
    rob = results["robustness"]
    assert set(rob["removed"]) == {winner, results["best_single"]}
    assert rob["missing_rate"][winner]["rates"] == [0.0, 0.5, 1.0]
    # at rate 0 nothing is removed: the very score of the ranked table
    table_auroc = next(e for e in results["entries"] if e["id"] == winner)["test"]["auroc"]["mean"]
    assert rob["removed"][winner]["none"] == table_auroc
    for m in mods:
        assert rob["missing_rate"][winner][m][0] == table_auroc
    data = results["data"]
    assert sum(s["cases"] for s in data["splits"].values()) == 160
    table = pd.read_csv(out / "table.csv")
    assert len(table) == len(results["entries"])
    # Calibration and triage: every neural entry's ECE before/after, the winner's curves.
    cal = results["calibration"]
    assert {e["id"] for e in cal["entries"]} == {e["id"] for e in neural} | set(refs)
    for e in cal["entries"]:
        assert set(e["before"]) == set(e["after"]) == {"ece", "ece_adaptive", "brier"}
        assert 0 <= e["conformal"]["coverage"] <= 1 and e["conformal"]["nominal"] == 0.9
    assert cal["winner"]["entry"] == winner and cal["winner"]["selective"]["kept"][0] == 1.0
    assert "youden" in results["study"]["threshold"]
    page = (out / "report.html").read_text()
    assert '<section id="calibration">' in page and "could not be drawn" not in page


def test_results_say_which_modality_drives_the_prediction(study: Any) -> None:
    res, cfg = study
    results = json.loads((res.out_dir / "results.json").read_text())
    ex = results["explain"]
    assert set(ex["entries"]) == {results["winner"], results["best_single"]}
    mods = sorted(m["name"] for m in cfg["modalities"])
    winner = ex["entries"][results["winner"]]
    assert sorted(winner["mean_abs"]) == mods and sorted(winner["permutation"]) == mods
    # The best single model has one modality: all of its prediction's change from the base.
    single = ex["entries"][results["best_single"]]
    used = results["best_single"].removeprefix("single_")
    assert list(single["mean_abs"]) == [used] and list(single["permutation"]) == [used]
    assert single["mean"][used] == pytest.approx(single["prediction"] - single["base"], abs=1e-6)
    page = (res.out_dir / "report.html").read_text()
    assert 'id="explain"' in page and "Which modality drives the prediction" in page


def test_winner_is_the_best_strategy_on_validation(study: Any) -> None:
    res, _ = study
    results = res.results
    fusions = [e for e in results["entries"] if e["kind"] == "fusion"]
    assert results["winner"] == max(fusions, key=lambda e: e["val"]["auroc"])["id"]
    singles = [e for e in results["entries"] if e["kind"] == "single"]
    assert results["best_single"] == max(singles, key=lambda e: e["val"]["auroc"])["id"]


def test_test_data_never_influences_the_choice(study: Any) -> None:
    """Turn every test prediction upside down: the test table changes, the winner does not."""
    res, cfg = study
    before = res.results
    out = res.out_dir
    for pred in out.glob("runs/*/*/predictions.csv"):
        frame = pd.read_csv(pred)
        test = frame["split"] == "test"
        # The probability after calibration and before (AUROC ranks the raw scores).
        for col in ("diagnosis_prob_disease", "diagnosis_prob_raw_disease"):
            frame.loc[test, col] = 1.0 - frame.loc[test, col]
        frame.to_csv(pred, index=False)
    for metrics in out.glob("runs/*/*/metrics.json"):
        m = json.loads(metrics.read_text())
        m["test"]["diagnosis"]["auroc"] = 1.0 - (m["test"]["diagnosis"]["auroc"] or 0.5)
        metrics.write_text(json.dumps(m))
    after = run_study(load_config(cfg), out, progress=False).results
    assert after["winner"] == before["winner"] and after["best_single"] == before["best_single"]
    assert after["best_reference"] == before["best_reference"]
    w = before["winner"]
    auroc = {r["id"]: r["test"]["auroc"]["mean"] for r in after["entries"]}
    auroc_before = {r["id"]: r["test"]["auroc"]["mean"] for r in before["entries"]}
    assert auroc[w] == pytest.approx(1 - auroc_before[w], abs=1e-6)


@pytest.mark.slow
def test_killed_study_resumes_and_skips_finished_runs(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = _study_config(
        quick_config, strategies=["concat"], seeds=1, ablation=False, robustness=False
    )
    cfg["train"]["epochs"] = 3
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study_out"
    cmd = [
        sys.executable,
        "-m",
        "fusiondx.cli",
        "study",
        str(path),
        "--out",
        str(out),
        "--quiet",
        "--jobs",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("runs/*/*/metrics.json")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/metrics.json")}
    assert finished, "the first training finished before the kill"
    assert not (out / "results.json").exists(), "killed before the end"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was retrained"
    trained = [
        p
        for p in out.glob("runs/*/*/metrics.json")
        if not p.parts[-3].startswith(("ref_", "probe_"))
    ]
    assert len(trained) == 5
    assert (out / "report.html").is_file()


def test_folds_score_every_case_once(quick_config: dict[str, Any], tmp_path: Path) -> None:
    cfg = _study_config(
        quick_config,
        strategies=["concat"],
        ablation=False,
        robustness=False,
        explain=False,
        references=["logistic"],
    )
    res = run_study(load_config(cfg), tmp_path / "cv", folds=3, progress=False)
    fusion = next(e for e in res.results["entries"] if e["id"] == "fusion_concat")
    assert [r["name"] for r in fusion["runs"]] == ["fold0", "fold1", "fold2"]
    tested = pd.concat(
        pd.read_csv(Path(r["run_dir"]) / "predictions.csv").query("split == 'test'")
        for r in fusion["runs"]
    )
    assert tested["case_id"].is_unique and len(tested) == 160
    assert res.results["study"]["folds"] == 3 and len(fusion["test"]["auroc"]["per_seed"]) == 1


def test_cli_rejects_seeds_with_folds_and_unknown_strategies(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study_config(quick_config)))
    runner = CliRunner()
    res = runner.invoke(app, ["study", str(path), "--seeds", "2", "--folds", "3"])
    assert res.exit_code == 2 and "cannot be combined" in res.output
    res = runner.invoke(app, ["study", str(path), "--strategies", "concat,atention"])
    assert res.exit_code == 2 and "Did you mean 'attention'" in res.output
    res = runner.invoke(app, ["study", "--help"])
    assert "Example" in res.output


def test_folds_are_refused_when_a_split_column_fixes_the_split(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    from fusiondx.errors import ConfigError

    cfg = _study_config(quick_config, strategies=["concat"], ablation=False, robustness=False)
    cfg["data"]["split"] = {"column": "site"}
    with pytest.raises(ConfigError, match="split.column"):
        run_study(load_config(cfg), tmp_path / "cv", folds=3, progress=False)
    cfg["data"]["split"]["folds"] = 3
    with pytest.raises(Exception, match="cannot be combined with column"):
        load_config(cfg)
