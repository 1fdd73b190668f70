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


def test_the_shares_of_the_metric_add_up_to_the_model_s_auroc_above_chance(
    explained: dict[str, Any], quick_run: Path
) -> None:
    share = explained["entries"]["fusion_concat"]["metric_share"]
    assert list(share["share"]) == ["cxr", "ecg", "labs", "report"]
    # No modality: one constant prediction, AUROC 0.5; every modality: the run's test AUROC.
    assert share["empty"] == pytest.approx(0.5)
    test_auroc = json.loads((quick_run / "metrics.json").read_text())["test"]["diagnosis"]["auroc"]
    assert share["full"] == pytest.approx(test_auroc, abs=1e-4)
    assert sum(share["share"].values()) == pytest.approx(share["full"] - share["empty"], abs=1e-9)


def test_a_modality_the_model_never_sees_earns_no_share(quick_run: Path) -> None:
    from fusiondx.explanations.importance import metric_shapley
    from fusiondx.study.explanations import load_test
    from fusiondx.tasks import task_type

    model, store, idx = load_test(quick_run)
    info = task_info(quick_run, "diagnosis")
    head, y = model.task_head("diagnosis"), store.targets["diagnosis"][idx]
    j = store.modalities.index("ecg")
    store.mask[:, j] = False  # no case has an ECG: allowing it changes nothing

    def auroc(raw: Any) -> float:
        return float(task_type(info).score(info, head, raw, y, "auroc"))

    share = metric_shapley(model, info, store, idx, auroc)["share"]
    assert share["ecg"] == pytest.approx(0.0, abs=1e-12)
    assert max(abs(v) for v in share.values()) > 0


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
    assert "share of AUROC" in section
    assert "could not be drawn" not in page
    empty = write_report({**results, "explain": None}, tmp_path / "e.html").read_text()
    assert "No modality explanations in this study" in empty
