"""The demo end to end, on a tiny cohort: every model trained on the same split and compared."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fusiondx.demo import FUSIONS, run_demo


def test_demo_trains_every_baseline_and_fusion(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    results = run_demo(tmp_path / "demo", cases=120, epochs=1, console=console)
    assert len(results) == 4 + len(FUSIONS)
    out = console.export_text()
    assert "Best fusion on validation" in out and "best single modality" in out
    splits = {(r["run"] / "splits.csv").read_text() for r in results}
    assert len(splits) == 1  # identical splits for every model
    assert all((r["run"] / "model.pt").is_file() for r in results)
