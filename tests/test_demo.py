"""The demo end to end, on a tiny cohort: the study it runs, what it prints and where it writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from fusiondx.demo import run_demo


def test_demo_runs_the_study_and_says_where_the_report_is(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    result = run_demo(
        tmp_path / "demo",
        cases=160,
        epochs=1,
        seeds=1,
        strategies=["concat"],
        n_boot=100,
        jobs=1,
        console=console,
    )
    out = console.export_text()
    ids = {e["id"] for e in result.results["entries"]}
    assert {"single_cxr", "single_ecg", "single_report", "single_labs", "fusion_concat"} <= ids
    splits = {
        (Path(r["run_dir"]) / "splits.csv").read_text()
        for e in result.results["entries"]
        for r in e["runs"]
    }
    assert len(splits) == 1  # identical splits for every model
    assert result.report.is_file() and str(result.report) in out.replace("\n", "")
    assert "winner, chosen on validation data" in out
    assert (tmp_path / "demo" / "study.yaml").is_file()
    assert len(pd.read_csv(result.out_dir / "table.csv")) == len(ids)
