"""The post-hoc layer of a real run: fitted on validation, stored, applied by evaluate and
predict, and absent from runs written before it (which predict as they did)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx
from fusiondx.config import Config
from fusiondx.engine.run import evaluate, predict
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import ConfigError


@pytest.fixture(scope="module")
def run(cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: Any) -> Path:
    import torch

    torch.set_num_threads(1)
    cfg = copy.deepcopy(quick_base)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path_factory.mktemp("posthoc") / "runs")
    cfg["train"]["epochs"] = 2
    return fusiondx.fit(cfg).run_dir


def test_fit_stores_and_reports_the_posthoc_layer(run: Path) -> None:
    state = RunDir(run).posthoc()
    entry = state["tasks"]["diagnosis"]
    assert entry["calibration"]["method"] == "temperature"
    assert entry["calibration"]["nll_after"] <= entry["calibration"]["nll_before"]
    assert entry["threshold"]["rule"] == "youden" and 0 < entry["threshold"]["values"][0] < 1
    assert entry["conformal"]["coverage"] == 0.9

    metrics = json.loads(RunDir(run).metrics_file.read_text())
    for split in ("val", "test"):
        m = metrics[split]["diagnosis"]
        assert set(m["calibration"]["before"]) == {"ece", "ece_adaptive", "brier"}
        assert m["threshold"]["values"] == entry["threshold"]["values"]
        assert "youden" in m["threshold"]["described"]
        c = m["conformal"]
        assert c["nominal"] == 0.9 and set(c["per_class"]) == {"healthy", "disease"}
        assert 0 <= c["mean_set_size"] <= 2
    # The fit minimised the validation NLL: the Brier score follows on validation.
    val = metrics["val"]["diagnosis"]["calibration"]
    assert val["after"]["brier"] <= val["before"]["brier"] + 1e-3

    frame = pd.read_csv(RunDir(run).predictions_file)
    thr = entry["threshold"]["values"][0]
    p = frame["diagnosis_prob_disease"].to_numpy()
    assert (frame["diagnosis_pred"] == np.where(p > thr, "disease", "healthy")).all()
    # Temperature scaling keeps the ranking of the raw probabilities (AUROC unchanged).
    raw = frame["diagnosis_prob_raw_disease"].to_numpy()
    assert (np.argsort(p, kind="stable") == np.argsort(raw, kind="stable")).mean() > 0.95
    single = frame["diagnosis_set"].fillna("").str.count(r"\|") == 0
    assert (
        frame["diagnosis_refer"] == ~(single & (frame["diagnosis_set"] == frame["diagnosis_pred"]))
    ).all()


def test_predict_and_evaluate_apply_it(run: Path, cohort_dir: Path, tmp_path: Path) -> None:
    table = predict(run, cohort_dir / "manifest.csv", tmp_path / "p.csv", progress=False)
    assert {"diagnosis_set", "diagnosis_refer", "diagnosis_prob_raw_disease"} <= set(table)
    fitted = pd.read_csv(RunDir(run).predictions_file).set_index("case_id")
    same = table.set_index("case_id").loc[fitted.index]
    np.testing.assert_allclose(
        same["diagnosis_prob_disease"], fitted["diagnosis_prob_disease"], atol=1e-6
    )
    assert (same["diagnosis_set"].fillna("") == fitted["diagnosis_set"].fillna("")).all()

    result = evaluate(run, progress=False)
    test = json.loads(RunDir(run).metrics_file.read_text())["test"]["diagnosis"]
    got = result.metrics["metrics"]["diagnosis"]
    for k in ("accuracy", "f1", "auroc"):
        assert got[k] == pytest.approx(test[k], abs=1e-6)
    assert got["conformal"]["coverage"] == pytest.approx(test["conformal"]["coverage"])


def test_a_run_without_posthoc_json_predicts_as_before(
    run: Path, cohort_dir: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "posthoc.json").unlink()
    table = predict(old, cohort_dir / "manifest.csv", tmp_path / "p.csv", progress=False)
    assert list(table.columns) == ["case_id", "diagnosis_prob_disease", "diagnosis_pred"]
    p = table["diagnosis_prob_disease"].to_numpy()
    assert (table["diagnosis_pred"] == np.where(p >= 0.5, "disease", "healthy")).all()
    raw = pd.read_csv(RunDir(run).predictions_file).set_index("case_id")[
        "diagnosis_prob_raw_disease"
    ]
    np.testing.assert_allclose(
        table.set_index("case_id").loc[raw.index, "diagnosis_prob_disease"], raw, atol=1e-6
    )


@pytest.mark.parametrize(
    ("posthoc", "says"),
    [
        ({"threshold": "median"}, "is not a rule"),
        ({"threshold": 1.5}, "between 0 and 1"),
        ({"threshold": {"specificity": 0.9}}, "'sensitivity'"),
        ({"threshold": {"sensitivity": 0}}, "target sensitivity"),
        ({"calibration": "platt"}, "calibration"),
        ({"conformal": {"coverage": 90}}, "coverage"),
        ({"conformal": {"score": "raps"}}, "score"),
        ({"conforml": None}, "conformal"),
    ],
)
def test_bad_posthoc_values_are_rejected(
    quick_base: dict[str, Any], posthoc: dict[str, Any], says: str
) -> None:
    cfg = copy.deepcopy(quick_base) | {"posthoc": posthoc}
    with pytest.raises(ConfigError, match=says) as err:
        fusiondx.load_config(cfg)
    assert "posthoc" in str(err.value)


def test_posthoc_settings_are_read() -> None:
    from fusiondx.config import PosthocConfig

    p = PosthocConfig.model_validate(
        {"threshold": {"sensitivity": 0.9}, "conformal": {"coverage": 0.8, "mondrian": True}}
    )
    assert p.threshold == {"sensitivity": 0.9} and p.conformal.mondrian
    assert PosthocConfig.model_validate({"threshold": 0.5, "conformal": None}).conformal is None
    assert Config.model_fields["posthoc"].default.threshold == "youden"


def test_cli_says_threshold_calibration_and_referrals(
    run: Path, cohort_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from fusiondx.cli import app

    said = CliRunner().invoke(app, ["evaluate", str(run)])
    assert said.exit_code == 0, said.output
    text = said.output.replace("\n", " ")
    assert "threshold metrics at the validation-chosen youden threshold" in text
    assert "calibration (temperature): ECE" in text and "conformal sets (nominal 0.900)" in text
    out = tmp_path / "p.csv"
    said = CliRunner().invoke(
        app, ["predict", str(run), "--data", str(cohort_dir / "manifest.csv"), "--out", str(out)]
    )
    assert said.exit_code == 0, said.output
    referred = int(pd.read_csv(out)["diagnosis_refer"].sum())
    assert f"diagnosis: {referred} of 160 cases referred" in said.output.replace("\n", " ")


def test_options_off_and_other_rules() -> None:
    """calibration none keeps the outputs, conformal null writes no set, f1 / sensitivity rules."""
    import torch

    from fusiondx.config import PosthocConfig
    from fusiondx.engine import posthoc as ph
    from fusiondx.tasks import TaskInfo

    info = TaskInfo("dx", "binary", ("no", "yes"), ("dx",))
    head = ph.ProbabilityHead("binary")
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.4).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0.01, 0.99)
    z = head.logits(p)
    for rule, check in (
        ("f1", lambda t: t["rule"] == "f1"),
        ({"sensitivity": 0.95}, lambda t: t["validation"][0]["sensitivity"] >= 0.95),
        (0.5, lambda t: t["values"] == [0.5] and t["rule"] == "fixed"),
    ):
        cfg = PosthocConfig(calibration="none", threshold=rule, conformal=None)
        state = ph.fit_posthoc(cfg, [info], {"dx": head}, {"dx": z}, {"dx": y})
        entry = state["tasks"]["dx"]
        assert entry["calibration"] is None and entry["conformal"] is None
        assert check(entry["threshold"])
        post = ph.Posthoc(state)
        assert torch.equal(post.calibrate({"dx": z})["dx"], z)
        frame = pd.DataFrame({"case_id": np.arange(200), "dx_prob_yes": p, "dx_pred": "no"})
        cols = post.columns(frame, info, head, z)
        assert "dx_set" not in cols and "dx_refer" not in cols
        thr = entry["threshold"]["values"][0]
        assert (cols["dx_pred"] == np.where(p > thr, "yes", "no")).all()
