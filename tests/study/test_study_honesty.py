"""The study tells the truth on cohorts where the truth is known: a planted shortcut is flagged,
fusion is not sold where it cannot help, and the report counts folds and cases right."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import load_config
from fusiondx.study.study import run_study
from fusiondx.study.verdict import decide


def _config(quick_config: dict[str, Any], manifest: Path, **study: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(quick_config)
    cfg["data"]["manifest"] = str(manifest)
    cfg["train"]["epochs"] = 3
    cfg["study"] = {
        "strategies": ["concat"],
        "seeds": 1,
        "n_boot": 300,
        "ablation": False,
        "robustness": False,
        "explain": False,
        "references": ["logistic", "pixels", "presence"],
        **study,
    }
    return cfg


def test_a_planted_presence_shortcut_is_flagged_in_cli_table_and_report(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    """Every modality's content is noise; only which inputs a case has tells the label (labs and
    reports ordered when disease is suspected). Whatever the models reach, they reach it through
    presence, and the probe that sees only presence must be named."""
    from fusiondx.datasets.synthetic import make_cohort

    manifest = make_cohort(
        tmp_path / "cohort",
        n_cases=240,
        seed=5,
        image_size=32,
        presence_shortcut=0.9,
        uninformative=("image", "ecg", "report", "labs"),
    )
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(_config(quick_config, manifest)))
    out = CliRunner().invoke(app, ["study", str(path), "--out", str(tmp_path / "s")])
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "s" / "results.json").read_text())
    assert "probe_presence" in results["verdict"]["shortcuts"]
    assert not results["verdict"]["fusion_helps"]
    probe = next(e for e in results["entries"] if e["id"] == "probe_presence")["test"]["auroc"]
    assert probe["low"] > 0.5  # the probe itself is clearly above chance
    flat = " ".join(out.output.split())
    assert "Shortcut warning: a model that sees only which inputs each case has" in flat
    assert "Shortcut warning" in (tmp_path / "s" / "table.md").read_text()
    page = (tmp_path / "s" / "report.html").read_text()
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    headline = results["verdict"]["headline"].split(":")[0]
    assert summary.index("Shortcut warning") < summary.index(headline)  # said first, at the top


def test_the_verdict_does_not_claim_fusion_where_the_oracle_says_it_cannot_help(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    """ECG, report and labs carry nothing of the label: fusion cannot beat the image alone."""
    from fusiondx.datasets.synthetic import make_cohort, oracle_aurocs

    manifest = make_cohort(
        tmp_path / "cohort",
        n_cases=240,
        seed=6,
        image_size=32,
        uninformative=("ecg", "report", "labs"),
    )
    oracle = oracle_aurocs(manifest)
    assert oracle["fused"] < oracle["image"] + 0.02  # the oracle: fusion does not help here
    res = run_study(
        load_config(_config(quick_config, manifest)), tmp_path / "s", progress=False
    ).results
    v = res["verdict"]
    assert not v["fusion_helps"] and not v["headline"].startswith("Fusion helps")
    assert v["simpler"] in {e["id"] for e in res["entries"] if e["kind"] in ("single", "reference")}


def test_report_counts_folds_and_pooled_cases_from_the_results(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = _config(
        quick_config,
        Path(quick_config["data"]["manifest"]),
        robustness=True,
        missing_rates=[0.0, 1.0],
        references=["logistic"],
    )
    res = run_study(load_config(cfg), tmp_path / "cv", folds=3, progress=False).results
    study, data = res["study"], res["data"]
    assert study["folds"] == 3 and study["seeds"] is None and study["n_test"] == 160
    assert len(data["per_fold"]) == 3 and sum(f["test"]["cases"] for f in data["per_fold"]) == 160
    page = (tmp_path / "cv" / "report.html").read_text()
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert (
        "3 folds (out-of-fold predictions pooled)" in summary and "of the 160 test cases" in summary
    )
    assert "0 seeds" not in page and "Mean over 0" not in page
    data_html = page.split('<section id="data">')[1].split("</section>")[0]
    assert data_html.count("fold 2") == 3  # train, val and test of the last fold
    table = (tmp_path / "cv" / "table.md").read_text()
    assert "Pooled out-of-fold predictions of 3 folds on the test split (160 cases)" in table
    # Robustness with nothing removed is the ranked table's number, pooled over the folds.
    rob, winner = res["robustness"], res["winner"]
    table_auroc = next(e for e in res["entries"] if e["id"] == winner)["test"]["auroc"]["mean"]
    assert rob["removed"][winner]["none"] == table_auroc
    assert rob["missing_rate"][winner]["cxr"][0] == table_auroc


def _entry(
    eid: str, kind: str, mean: float, low: float, high: float, fusion: str = ""
) -> dict[str, Any]:
    return {
        "id": eid,
        "label": eid,
        "kind": kind,
        "fusion": fusion,
        "modalities": ["a", "b"],
        "test": {"auroc": {"mean": mean, "low": low, "high": high}},
    }


def _diff(d: float, lo: float, hi: float, b: str = "") -> dict[str, Any]:
    return {"difference": d, "low": lo, "high": hi, "p_value": 0.01, "n_boot": 1000, "b": b}


@pytest.mark.parametrize(
    ("vs_single", "vs_ref", "helps", "simpler", "tone"),
    [
        ((0.1, 0.05, 0.15), (0.05, 0.01, 0.09), True, None, "good"),
        ((0.1, 0.05, 0.15), (0.01, -0.03, 0.05), False, "ref", "meh"),  # a reference does as well
        ((0.02, -0.02, 0.06), (0.05, 0.01, 0.09), False, "single", "meh"),
        ((0.1, 0.05, 0.15), (-0.08, -0.12, -0.03), False, "ref", "bad"),  # a reference is better
        (
            (-0.05, -0.08, -0.02),
            (-0.01, -0.05, 0.03),
            False,
            "single",
            "bad",
        ),  # the image alone is better
    ],
)
def test_fusion_helps_only_above_both_the_best_single_and_the_best_reference(
    vs_single: tuple[float, ...],
    vs_ref: tuple[float, ...],
    helps: bool,
    simpler: str | None,
    tone: str,
) -> None:
    by = {
        e["id"]: e
        for e in (
            _entry("win", "fusion", 0.9, 0.85, 0.95),
            _entry("single", "single", 0.8, 0.7, 0.9),
            _entry("ref", "reference", 0.88, 0.8, 0.94),
            _entry("probe", "probe", 0.55, 0.45, 0.65, "presence"),
        )
    }
    v = decide(
        by,
        "auroc",
        "win",
        "single",
        "ref",
        {"single": _diff(*vs_single), "reference": _diff(*vs_ref)},
        [],
        {},
    )
    assert (v["fusion_helps"], v["simpler"], v["tone"]) == (helps, simpler, tone)
    assert v["shortcuts"] == []  # a probe near chance and below the winner is no shortcut
    assert v["headline"].startswith("Fusion helps" if helps else "A simpler model")


def test_a_probe_as_good_as_the_winner_is_a_shortcut_even_with_a_wide_interval() -> None:
    by = {
        e["id"]: e
        for e in (
            _entry("win", "fusion", 0.66, 0.45, 0.85),
            _entry("single", "single", 0.6, 0.4, 0.8),
            _entry("probe", "probe", 0.68, 0.42, 0.9, "presence"),
        )
    }
    v = decide(by, "auroc", "win", "single", None, {"single": _diff(0.06, -0.1, 0.2)}, [], {})
    assert v["shortcuts"] == ["probe"] and v["lines"][0].startswith("Shortcut warning")


def test_models_that_did_not_learn_are_named_by_what_went_wrong() -> None:
    import numpy as np
    import pandas as pd

    from fusiondx.study.analysis import EntryData, learning_flags
    from fusiondx.study.plan import Entry, Replicate
    from fusiondx.study.runner import Job
    from fusiondx.tasks import TaskInfo

    info = TaskInfo("dx", "binary", ("no", "yes"), ("label",))
    rng = np.random.default_rng(0)

    def data(
        eid: str, kind: str, probs: list[np.ndarray], metrics: list[dict[str, Any]]
    ) -> EntryData:
        entry = Entry(eid, eid, kind, "concat", ("a",))
        jobs = [
            Job(
                entry,
                Replicate(f"seed{k}", k),
                {"output_dir": "x", "name": f"seed{k}", "train": {"epochs": 10}},
            )
            for k in range(len(probs))
        ]
        frames = [pd.DataFrame({"dx_prob_yes": p}) for p in probs]
        return EntryData(entry, jobs, np.arange(40), np.zeros(40), probs, metrics, frames)

    fine = {"best_epoch": 4, "epochs_run": 9}
    loaded = {
        "good": data("good", "fusion", [rng.random(40)] * 2, [fine, fine]),
        "flat": data("flat", "single", [np.full(40, 0.4)] * 2, [fine, fine]),
        "first": data(
            "first", "single", [rng.random(40)] * 2, [{"best_epoch": 0, "epochs_run": 5}, fine]
        ),
        "capped": data(
            "capped", "fusion", [rng.random(40)] * 2, [{"best_epoch": 9, "epochs_run": 10}] * 2
        ),
        "ref": data("ref", "reference", [np.full(40, 0.5)], [{}]),  # references are not judged
        # the decoder without input writes one text for every case by design: not a failure
        "single_nocontext": data(
            "single_nocontext", "single", [np.full(40, 0.4)] * 2, [fine, fine]
        ),
    }
    flags = learning_flags(loaded, info)
    assert set(flags) == {"flat", "first", "capped"}
    assert flags["flat"] == ["the same prediction for every test case in 2 of 2 seeds"]
    assert flags["first"] == ["best epoch 0 in 1 of 2 seeds"]
    assert flags["capped"] == ["still improving at the 10-epoch cap in 2 of 2 seeds"]
    by = {
        e["id"]: e
        for e in (
            _entry("win", "fusion", 0.9, 0.85, 0.95),
            _entry("flat", "single", 0.5, 0.4, 0.6),
            _entry("first", "single", 0.7, 0.6, 0.8),
            _entry("capped", "fusion", 0.8, 0.7, 0.9),
        )
    }
    v = decide(by, "auroc", "win", "first", None, {"single": _diff(0.2, 0.1, 0.3)}, [], flags)
    assert (
        "Did not learn: flat (the same prediction for every test case in 2 of 2 seeds)."
        in v["lines"]
    )
    assert any(x.startswith("Kept its first epoch: first") for x in v["lines"])
    assert any(x.startswith("Cut short: capped") for x in v["lines"])


def test_a_probe_above_every_single_modality_is_a_shortcut_even_below_the_winners_interval() -> (
    None
):
    """The planted-shortcut cohort: the fused model adds the image's evidence to the pattern and
    ends above the probe's reach, but the pattern alone beats every modality's content."""
    by = {
        e["id"]: e
        for e in (
            _entry("win", "fusion", 0.94, 0.91, 0.96),
            _entry("single", "single", 0.79, 0.73, 0.84),
            _entry("probe", "probe", 0.90, 0.86, 0.94, "presence"),
        )
    }
    v = decide(by, "auroc", "win", "single", None, {"single": _diff(0.15, 0.10, 0.20)}, [], {})
    assert v["shortcuts"] == ["probe"] and "above the best single modality (single" in v["lines"][0]
    by["probe"]["test"]["auroc"] = {"mean": 0.75, "low": 0.70, "high": 0.80}
    assert (
        decide(by, "auroc", "win", "single", None, {"single": _diff(0.15, 0.10, 0.20)}, [], {})[
            "shortcuts"
        ]
        == []
    )


def test_one_modality_has_nothing_to_fuse_and_is_compared_with_its_reference() -> None:
    win = {**_entry("win", "fusion", 0.954, 0.94, 0.97), "modalities": ["image"]}
    single = {**_entry("single", "single", 0.954, 0.94, 0.97), "label": "image only (image, cnn)"}
    by = {"win": win, "single": single, "ref": _entry("ref", "reference", 0.934, 0.91, 0.955)}
    v = decide(
        by,
        "auroc",
        "win",
        "single",
        "ref",
        {"single": _diff(0.0, 0.0, 0.0), "reference": _diff(0.02, 0.01, 0.032)},
        [],
        {},
    )
    assert v["headline"].startswith(
        "Nothing to fuse (one modality): image only (image, cnn) reaches AUROC"
    )
    assert (
        "network minus it: +0.020" in v["headline"]
        and not v["fusion_helps"]
        and v["tone"] == "good"
    )
    assert not any("best single modality" in x for x in v["lines"])
