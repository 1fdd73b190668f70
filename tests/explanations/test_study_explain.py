"""The study's "Which modality drives the prediction": numbers from a trained run, and the section."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from fusiondx.study.analysis import task_info
from fusiondx.study.explanations import explanations
from fusiondx.study.report import write_report


@pytest.fixture(scope="module")
def explained(quick_run: Path) -> dict[str, Any]:
    entry = SimpleNamespace(jobs=[SimpleNamespace(run_dir=quick_run)])
    info = task_info(quick_run, "diagnosis")
    out = explanations({"fusion_concat": entry}, ["fusion_concat"], info, "auroc", repeats=4)
    assert out is not None
    return out


def test_every_modality_has_mean_abs_shapley_and_permutation_importance(
    explained: dict[str, Any],
) -> None:
    e = explained["entries"]["fusion_concat"]
    mods = ["cxr", "ecg", "labs", "report"]
    assert list(e["mean_abs"]) == mods and list(e["permutation"]) == mods
    for m in mods:
        assert e["mean_abs"][m] >= abs(e["mean"][m]) >= 0
        p = e["permutation"][m]
        assert p["low"] <= p["mean"] <= p["high"] and p["repeats"] == 4
        assert 0 < e["present"][m] <= 1
    assert sum(e["mean_abs"].values()) > 0
    # Mean Shapley values add up to the mean prediction minus the mean base.
    assert sum(e["mean"].values()) == pytest.approx(e["prediction"] - e["base"], abs=1e-6)
    assert explained["explained"] == "probability of 'disease'"
    json.dumps(explained)  # results.json can hold it


def test_same_seed_same_numbers(quick_run: Path, explained: dict[str, Any]) -> None:
    entry = SimpleNamespace(jobs=[SimpleNamespace(run_dir=quick_run)])
    info = task_info(quick_run, "diagnosis")
    again = explanations({"x": entry}, ["x"], info, "auroc", repeats=4)
    assert again is not None
    a, b = explained["entries"]["fusion_concat"], again["entries"]["x"]
    assert a["permutation"] == b["permutation"]
    np.testing.assert_allclose(list(a["mean_abs"].values()), list(b["mean_abs"].values()))


def test_the_report_section_shows_the_chart_and_table(
    explained: dict[str, Any], tmp_path: Path
) -> None:
    results = {
        "study": {"name": "s", "primary_metric": "auroc"},
        "entries": [],
        "explain": explained,
    }
    page = write_report(results, tmp_path / "r.html").read_text()
    section = page.split('<section id="explain">')[1].split("</section>")[0]
    assert "Which modality drives the prediction" in section
    assert section.count("data:image/png;base64,") == 1
    assert "mean |Shapley|" in section and "report" in section
    assert "could not be drawn" not in page
    empty = write_report({**results, "explain": None}, tmp_path / "e.html").read_text()
    assert "No modality explanations in this study" in empty
