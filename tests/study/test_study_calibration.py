"""The study's calibration and triage results, from predictions tables and posthoc.json files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fusiondx.evaluation import calibration as cal
from fusiondx.evaluation import conformal as conf
from fusiondx.study.analysis import EntryData, confusion
from fusiondx.study.calibration import calibration_results, threshold_note
from fusiondx.tasks import TaskInfo, task_type

INFO = TaskInfo("dx", "binary", ("healthy", "disease"), ("dx",))


def _entry(tmp_path: Path, eid: str, kind: str, seed: int, posthoc: bool = True) -> EntryData:
    """A binary entry whose raw test probabilities are over-confident (logits x4)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.2, 800)
    y = (rng.random(800) < 1 / (1 + np.exp(-z))).astype(int)
    params = cal.fit_scaling(4 * z[:400], y[:400], "binary")
    fitted = conf.fit_conformal(
        conf.class_probs(
            cal.to_probs(cal.apply_scaling(4 * z[:400], params, "binary"), "binary"), "binary"
        ),
        y[:400],
    )
    raw = cal.to_probs(4 * z[400:], "binary")
    p = cal.to_probs(cal.apply_scaling(4 * z[400:], params, "binary"), "binary")
    sets = conf.predict_sets(conf.class_probs(p, "binary"), fitted)
    frame = pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(400)],
            "dx_true": np.array(INFO.classes)[y[400:]],
            "dx_prob_disease": p,
        }
    )
    if posthoc:
        frame["dx_prob_raw_disease"] = raw
        frame["dx_pred"] = np.array(INFO.classes)[(p > 0.3).astype(int)]
        frame["dx_set"] = [
            "|".join(c for c, on in zip(INFO.classes, s, strict=True) if on) for s in sets
        ]
    else:
        frame["dx_pred"] = np.array(INFO.classes)[(p >= 0.5).astype(int)]
    run_dir = tmp_path / eid
    run_dir.mkdir()
    if posthoc:
        state = {
            "tasks": {
                "dx": {
                    "calibration": params,
                    "threshold": {"rule": "youden", "values": [0.3]},
                    "conformal": fitted,
                }
            }
        }
        (run_dir / "posthoc.json").write_text(json.dumps(state, default=lambda x: None))
    frame = frame.set_index("case_id")
    return EntryData(
        SimpleNamespace(id=eid, label=eid, kind=kind),
        [SimpleNamespace(run_dir=run_dir)],
        frame.index.to_numpy(),
        y[400:],
        [task_type(INFO).frame_probs(INFO, frame)],
        [{}],
        [frame],
    )


def test_calibration_results_before_after_and_triage(tmp_path: Path) -> None:
    loaded = {
        "fusion_concat": _entry(tmp_path, "fusion_concat", "fusion", 0),
        "single_ecg": _entry(tmp_path, "single_ecg", "single", 1),
        "ref_x": _entry(tmp_path, "ref_x", "reference", 2, posthoc=False),
    }
    r = calibration_results(loaded, INFO, "fusion_concat")
    assert [e["id"] for e in r["entries"]] == ["fusion_concat", "single_ecg"]  # ref_x: none
    for e in r["entries"]:
        assert e["after"]["ece"] <= e["before"]["ece"] / 2  # over-confident logits fixed
        assert e["temperature"][0] == pytest.approx(4, rel=0.25)
        assert e["conformal"]["nominal"] == 0.9
        assert abs(e["conformal"]["coverage"] - 0.9) < 0.05
        assert set(e["conformal"]["per_class"]) == {"healthy", "disease"}
    w = r["winner"]
    assert w["entry"] == "fusion_concat"
    assert sum(w["reliability"]["before"]["calibration"]["count"]) == 400
    acc = w["selective"]["accuracy"]
    assert w["selective"]["kept"][0] == 1.0 and acc[-1] >= acc[0]  # the certain are right more
    assert "youden threshold (0.300)" in threshold_note(loaded, INFO, "fusion_concat")


def test_table_counts_the_runs_calls_and_ranks_raw_scores(tmp_path: Path) -> None:
    d = _entry(tmp_path, "fusion_concat", "fusion", 0)
    frame = d.frames[0]
    scores = task_type(INFO).case_scores(INFO, frame)
    y = d.y
    called = (frame["dx_prob_disease"].to_numpy() > 0.3).astype(int)
    assert scores["accuracy"](None) == pytest.approx(np.mean(called == y))
    assert scores["sensitivity"](None) == pytest.approx(called[y == 1].mean())
    from sklearn.metrics import roc_auc_score

    assert scores["auroc"](None) == pytest.approx(roc_auc_score(y, frame["dx_prob_raw_disease"]))
    m = np.asarray(confusion(d, INFO)["matrix"])
    assert m[1, 1] == ((called == 1) & (y == 1)).sum()
    # A table written without the post-hoc layer is scored at 0.5, as before.
    old = _entry(tmp_path, "old", "fusion", 0, posthoc=False).frames[0]
    at_half = (old["dx_prob_disease"].to_numpy() > 0.5).astype(int)
    assert task_type(INFO).case_scores(INFO, old)["accuracy"](None) == pytest.approx(
        np.mean(at_half == y)
    )
    assert (
        calibration_results(
            {"old": _entry(tmp_path, "old2", "fusion", 0, posthoc=False)}, INFO, "old"
        )
        is None
    )
