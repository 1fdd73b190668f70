"""`fusiondx suggest` on a tiny trained run: ranking, diversity, the cases left out, the CLI, bad input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.config import Config
from fusiondx.engine.run import fit, predict
from fusiondx.engine.suggest import suggest
from fusiondx.engine.suggest_reasons import TaskProbs
from fusiondx.errors import ConfigError, DataError

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
EMPTY = ["image", "ecg", "report", "age", "sex", "crp", "troponin", "smoker"]  # every modality


@pytest.fixture(scope="module")
def trained(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One quick run over the session cohort, shared by the tests of this file."""
    cfg = copy.deepcopy(quick_base)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path_factory.mktemp("suggest") / "runs")
    return fit(Config.model_validate(cfg)).run_dir


@pytest.fixture(scope="module")
def pool(cohort_dir: Path, trained: Path) -> Path:
    """60 cohort cases as an unlabelled pool: labels emptied, the last 25 renamed as new cases
    (the others keep the ids the run trained, validated and tested on), and the last case with
    no modality at all."""
    df = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False).iloc[:60]
    df["label"] = ""
    df.loc[35:, "case_id"] = "new_" + df.loc[35:, "case_id"]
    df.loc[len(df) - 1, EMPTY] = ""
    out = cohort_dir / "pool.csv"  # beside the manifest: the same relative file paths
    df.to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def ranked(trained: Path, pool: Path) -> Any:
    """Every rankable pool case, ranked by entropy (one suggest call for several tests)."""
    return suggest(trained, pool, n=10_000)


def _trained_ids(run: Path) -> set[str]:
    splits = pd.read_csv(run / "splits.csv", dtype=str)
    return set(splits.loc[splits["split"] == "train", "case_id"])


def test_cases_are_ranked_by_how_unsure_the_model_is(
    trained: Path, pool: Path, ranked: Any, tmp_path: Path
) -> None:
    table = ranked.table[ranked.table["rank"].notna()]
    assert table["rank"].tolist() == list(range(1, ranked.ranked + 1))
    # Independently of suggest: the probabilities `predict` gives, the most uncertain (closest
    # to 0.5) first, among the cases that are neither trained on nor empty.
    preds = predict(trained, pool, tmp_path / "p.csv", progress=False).set_index("case_id")
    p = preds["diagnosis_prob_disease"]
    eligible = p[~p.index.isin(_trained_ids(trained) | {_pool_ids(pool)[-1]})]
    expected = (eligible - 0.5).abs().sort_values(kind="stable").index.tolist()
    assert table["case_id"].tolist() == expected
    assert (np.diff(table["score"].to_numpy(float)) <= 1e-9).all()
    first = table.iloc[0]
    q = p[first["case_id"]]
    assert first["diagnosis_prob"] == pytest.approx(max(q, 1 - q), abs=1e-4)
    assert first["diagnosis_pred"] == ("disease" if q >= 0.5 else "healthy")
    assert first["reason"].startswith(f"p(disease)={q:.2f}")
    assert set(first["modalities"].split("+")) <= {"cxr", "ecg", "labs", "report"}


def _pool_ids(pool: Path) -> list[str]:
    return pd.read_csv(pool, dtype=str)["case_id"].tolist()


def test_trained_and_empty_cases_are_listed_last_with_the_reason(
    trained: Path, pool: Path, ranked: Any
) -> None:
    table = ranked.table
    left = table[table["rank"].isna()].set_index("case_id")
    trained_ids = _trained_ids(trained) & set(_pool_ids(pool))
    empty = _pool_ids(pool)[-1]
    assert trained_ids and set(left.index) == trained_ids | {empty}
    assert "no modality present" in left.loc[empty, "reason"]
    assert left.loc[empty, "modalities"] == "none"
    assert all("trained on this case" in left.loc[i, "reason"] for i in trained_ids)
    assert not set(table.loc[table["rank"].notna(), "case_id"]) & (trained_ids | {empty})
    assert any("no modality present" in n for n in ranked.notes)
    assert any("training split" in n for n in ranked.notes)


def test_more_cases_than_the_pool_holds_takes_all_and_says_so(
    trained: Path, pool: Path, ranked: Any
) -> None:
    eligible = len(_pool_ids(pool)) - len(_trained_ids(trained) & set(_pool_ids(pool))) - 1
    assert ranked.ranked == eligible
    assert any(f"only {eligible} pool case(s) can be ranked" in n for n in ranked.notes)


def test_diversity_picks_a_spread_batch_among_the_most_uncertain(
    trained: Path, pool: Path, ranked: Any
) -> None:
    diverse = suggest(trained, pool, n=5, diversity=True, candidates=3)
    picked = diverse.table.loc[diverse.table["rank"].notna(), "case_id"].tolist()
    by_uncertainty = ranked.table["case_id"].tolist()
    assert len(set(picked)) == 5 and set(picked) <= set(by_uncertainty[:15])
    assert picked[0] == by_uncertainty[0]  # the most uncertain case is taken first
    assert picked != by_uncertainty[:5]  # something farther away replaced a near-copy
    assert all("chosen for diversity" in r for r in diverse.table["reason"][1:5])


def test_with_two_classes_the_strategies_rank_alike(trained: Path, pool: Path, ranked: Any) -> None:
    other = suggest(trained, pool, n=10_000, strategy="least_confident")
    assert other.table["case_id"].tolist() == ranked.table["case_id"].tolist()


def test_cli_and_api_write_the_list_and_say_where(
    trained: Path, pool: Path, tmp_path: Path
) -> None:
    out = tmp_path / "to_label.csv"
    args = ["suggest", str(trained), "--pool", str(pool), "--n", "6"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Wrote 6 suggestions" in result.output and "to_label.csv" in result.output
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["rank", "case_id", "score"]
    assert {"diagnosis_pred", "diagnosis_prob", "reason", "modalities"} <= set(table.columns)
    assert table["rank"].dropna().tolist() == [1, 2, 3, 4, 5, 6]
    # Its own earlier output may be replaced (here by the Python API); a file it did not write may not.
    again = fusiondx.suggest(trained, pool, n=3, strategy="margin", out=out)
    assert again.written == out and len(pd.read_csv(out)) == len(again.table)
    assert pd.read_csv(out)["rank"].dropna().tolist() == [1, 2, 3]
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    refused = runner.invoke(app, [*args, "--out", str(other)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output


def test_bad_input_gets_clear_errors(trained: Path, pool: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        suggest(trained, pool, n=0)
    with pytest.raises(DataError, match="pool file does not exist"):
        suggest(trained, tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="Did you mean 'entropy'"):
        suggest(trained, pool, strategy="entropie")
    lacking = pool.parent / "pool_without_ecg.csv"
    pd.read_csv(pool, dtype=str).drop(columns=["ecg"]).to_csv(lacking, index=False)
    with pytest.raises(DataError, match="no column 'ecg' of modality 'ecg'") as err:
        suggest(trained, lacking)
    assert err.value.file == str(lacking) and "add the column" in str(err.value)
    result = runner.invoke(app, ["suggest", str(trained), "--pool", str(pool), "--n", "0"])
    assert (
        result.exit_code == 2 and "at least 1" in result.output and "Traceback" not in result.output
    )


def test_a_pool_needs_no_label_column(trained: Path, pool: Path) -> None:
    bare = pool.parent / "pool_no_label.csv"
    pd.read_csv(pool, dtype=str).drop(columns=["label", "patient_id", "site"]).to_csv(
        bare, index=False
    )
    assert suggest(trained, bare, n=4).ranked == 4


def test_reasons_in_words_for_multiclass_and_multilabel() -> None:
    mc = TaskProbs("dx", ("a", "b", "c"), np.array([[0.45, 0.40, 0.15], [0.9, 0.05, 0.05]]), False)
    assert mc.reason(0) == "p(a)=0.45, p(b)=0.40: the model is unsure between a and b"
    assert mc.reason(1).endswith("the model leans to a")
    assert mc.columns(np.array([0, 1])) == {
        "dx_pred": ["a", "a"],
        "dx_prob": pytest.approx([0.45, 0.9]),
    }
    ml = TaskProbs("f", ("x", "y"), np.array([[0.52, 0.95], [0.02, 0.97]]), True)
    assert ml.reason(0) == "p(x)=0.52: the model is unsure whether x is present"
    assert ml.reason(1).startswith("every label is fairly sure")
    assert ml.columns(np.array([0, 1]))["f_pred"] == ["x;y", "y"]
