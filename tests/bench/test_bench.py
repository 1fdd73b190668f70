"""The benchmark harness itself: report sections, step timing and the scale layouts."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from bench import _common
from bench.scale import modalities
from bench.steps import PHASES, StepTimer
from fusiondx.config import Config
from fusiondx.demo import DEMO_CONFIG
from fusiondx.engine.run import fit


def test_save_replaces_its_own_section_and_keeps_the_others(tmp_path, monkeypatch):
    report = tmp_path / "BENCHMARKS.md"
    report.write_text(
        "# Benchmarks\n\nHand-written notes.\n\n<!-- bench:other -->\nold other\n<!-- /bench:other -->\n"
    )
    monkeypatch.setattr(_common, "REPORT", report)
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    _common.save("limit", {"x": 1.5}, "first table", "Limit")
    _common.save("limit", {"x": 2.5}, "second table", "Limit")
    text = report.read_text()
    assert "Hand-written notes." in text and "old other" in text
    assert "second table" in text and "first table" not in text
    assert text.count("<!-- bench:limit -->") == 1
    saved = json.loads((tmp_path / "results" / "limit.json").read_text())
    assert (
        saved["x"] == 2.5
        and saved["machine"]["cores"] >= 1
        and saved["command"].startswith("python -m bench")
    )


def test_step_timer_accounts_for_every_training_step(quick_config):
    quick_config["train"]["epochs"] = 2
    timer = StepTimer()
    result = fit(Config.model_validate(quick_config), callbacks=[timer])
    steps = math.ceil(result.metrics["cases"]["train"] / quick_config["train"]["batch_size"])
    assert [int(e["steps"]) for e in timer.epochs] == [steps, steps]
    for e in timer.epochs:
        assert all(e[p] >= 0 for p in PHASES)
        assert e["forward"] > 0 and e["backward"] > 0


@pytest.mark.parametrize("k", range(1, 7))
def test_scale_layouts_have_k_modalities_and_keep_every_tabular_column(k):
    base = copy.deepcopy(DEMO_CONFIG["modalities"])
    mods = modalities(k, base)
    assert len(mods) == k and len({m["name"] for m in mods}) == k
    tabular = [c for m in mods if m["kind"] == "tabular" for c in m["columns"]]
    if k >= 5:
        assert sorted(tabular) == sorted(base[3]["columns"])
        for m in mods:
            if m["kind"] == "tabular":
                assert set(m["categorical"]) <= set(m["columns"])


def test_real_studies_skip_cleanly_without_shared_data(tmp_path, monkeypatch, capsys):
    from bench import documented, results

    monkeypatch.setattr(results, "SHARED", tmp_path / "absent")
    monkeypatch.setattr(results, "run", lambda name: pytest.fail(f"{name} must not run"))
    monkeypatch.setattr(documented, "main", lambda: 0)
    assert results.main(["--only", "ptbxl,nih_cxr"]) == 0
    out = capsys.readouterr().out
    assert "ptbxl: skipped, no real data" in out and "the committed summary stays" in out


def test_generated_blocks_are_rewritten_and_the_hand_written_text_kept(monkeypatch):
    from bench import documented

    monkeypatch.setitem(documented.BLOCKS, "demo", lambda: "| new table |")
    text = (
        "# Title\n\nHand-written reading.\n\n<!-- results:demo -->\n| old table |\n"
        "<!-- /results:demo -->\n\nMore prose.\n"
    )
    out = documented.render_doc(text)
    assert "| new table |" in out and "| old table |" not in out
    assert out.startswith("# Title\n\nHand-written reading.") and out.endswith("More prose.\n")
    assert documented.render_doc(out) == out
    with pytest.raises(KeyError, match="no renderer"):
        documented.render_doc("<!-- results:nope -->\nx\n<!-- /results:nope -->")


def test_tiled_cohort_repeats_the_base_under_new_case_and_patient_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import bench._common
    import bench.scale

    monkeypatch.setattr(bench._common, "WORK", tmp_path)
    monkeypatch.setattr(bench.scale, "WORK", tmp_path)
    df = pd.read_csv(bench.scale.tiled_cohort(50, base=20))
    base = pd.read_csv(tmp_path / "cohorts" / "n20_img32_npy_s0" / "manifest.csv")
    assert len(df) == 50 and df["case_id"].is_unique and df["patient_id"].is_unique
    assert df["ecg"].fillna("").tolist() == (base["ecg"].fillna("").tolist() * 3)[:50]
    assert "image" not in df.columns and "report" not in df.columns


def test_larger_than_memory_table_says_whether_the_goals_are_met() -> None:
    from bench.scale import ltm_table

    row = {"train_cases": 700, "decode_s": 1.0, "fit_s": 2.0, "peak_anon_gib": 0.3}
    ok = ltm_table(
        [
            {**row, "cases": 1000, "epoch_s": 1.0, "peak_rss_gib": 0.5},
            {**row, "cases": 10000, "train_cases": 7000, "epoch_s": 11.0, "peak_rss_gib": 0.6},
        ]
    )
    assert "1.10x" in ok and "goal < 4 GiB: met" in ok and "within 1.2x: met" in ok
    bad = ltm_table(
        [
            {**row, "cases": 1000, "epoch_s": 1.0, "peak_rss_gib": 0.5},
            {**row, "cases": 10000, "train_cases": 700, "epoch_s": 2.0, "peak_rss_gib": 5.0},
        ]
    )
    assert "goal < 4 GiB: not met" in bad and "within 1.2x: not met" in bad
