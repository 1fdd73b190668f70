"""The contract every registered task type keeps; a new type is tested the moment it registers.

Each type gives a tiny synthetic task of its own (:meth:`TaskType.example`): its label cells are
parsed and encoded, perfect and random predictions are scored, written as predictions columns
and bootstrapped from them, and a bad cell must be refused with a DataError that says where.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx.tasks
from fusiondx.config import load_config
from fusiondx.errors import DataError
from fusiondx.evaluation.directions import LOWER_IS_BETTER, WORDS_ONLY
from fusiondx.registry import TASK_TYPES
from fusiondx.tasks import LabelSource, Shown, TaskInfo, TaskType, infer_task, task_type

N = 40
NAMES = TASK_TYPES.names()


def _setup(name: str) -> dict[str, Any]:
    """The type's example, parsed, fitted and encoded as the data layer would."""
    tt = task_type(name)
    ex = tt.example(N, np.random.default_rng(0))
    modalities = ex.modalities or [{"name": "labs", "kind": "tabular", "columns": ["age"]}]
    cfg = load_config(
        {
            "name": "t",
            "data": {"manifest": "manifest.csv"},
            "modalities": modalities,
            "tasks": [ex.task],
        },
        base_dir=Path.cwd(),
    )
    df = ex.labels.copy()
    ids = pd.Series([f"case{i}" for i in range(len(df))])

    def open_image(cell: str, column: str, case_id: str, row: int) -> tuple[np.ndarray, Path]:
        if cell not in ex.files:
            raise DataError(f"There is no file '{cell}'.", case_id=case_id, row=row, column=column)
        return ex.files[cell], Path(cell)

    info = infer_task(cfg.tasks[0], df, cfg)
    info = tt.fit(info, df, np.ones(len(df), dtype=bool), cfg.tasks[0])
    src = LabelSource(df, ids, cfg, open_image)
    return {
        "tt": tt,
        "ex": ex,
        "cfg": cfg,
        "df": df,
        "ids": ids,
        "info": info,
        "src": src,
        "y": tt.encode(info, src),
    }


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _setup(request.param)


def test_every_public_module_registers_a_task_type() -> None:
    modules = [
        m.name for m in pkgutil.iter_modules(fusiondx.tasks.__path__) if not m.name.startswith("_")
    ]
    registered = {TASK_TYPES.get(n).cls.__module__ for n in NAMES}
    assert modules and {f"fusiondx.tasks.{m}" for m in modules} <= registered
    for n in NAMES:
        assert issubclass(TASK_TYPES.get(n).cls, TaskType) and TASK_TYPES.get(n).cls.heads, n


def test_labels_are_parsed_and_encoded(case: dict[str, Any]) -> None:
    tt, info, y = case["tt"], case["info"], case["y"]
    assert info.type == tt.name and info.name == case["ex"].task["name"]
    assert TaskInfo.from_dict(info.to_dict()) == info  # what a run saves it reads back
    assert len(y) == N and np.isfinite(y.astype(np.float64)).any()
    tt.check_train(info, y)  # the example can train a head
    keys = tt.stratification_key(info, y)
    assert keys.shape == (N,) and tt.split_key(info, case["src"]).shape == (N,)
    names = tt.stratum_names(info)
    assert names is None or set(keys) <= set(names)
    assert sum(tt.split_counts(info, y).values()) >= (N if tt.class_indices else 0)
    assert tt.head_inputs(info)["task"] == tt.name
    assert tt.num_outputs(info) >= 0


def test_perfect_predictions_score_best(case: dict[str, Any]) -> None:
    tt, info, y, ex = case["tt"], case["info"], case["y"], case["ex"]
    perfect = tt.metrics_of(info, ex.perfect(y), y)
    noise = tt.metrics_of(info, ex.noise(y, np.random.default_rng(1)), y)
    assert set(tt.metrics) <= set(perfect) and set(tt.metrics) <= set(noise)
    better = 0
    for m in tt.metrics:
        if m in WORDS_ONLY:  # NaN on token ids by design: only the study scores written words
            assert np.isnan(float(perfect[m])), m
            continue
        p, r = float(perfect[m]), float(noise[m])
        assert np.isfinite(p), m
        sign = -1 if m in LOWER_IS_BETTER else 1
        assert sign * p >= sign * r - 1e-9 if np.isfinite(r) else True, (m, p, r)
        better += sign * p > sign * r
    assert better, f"perfect predictions beat random ones on no metric of {tt.name}"


@pytest.mark.parametrize("which", ["perfect", "noise"])
def test_case_scores_from_the_predictions_table_equal_the_metrics(
    case: dict[str, Any], which: str
) -> None:
    tt, info, y, ex = case["tt"], case["info"], case["y"], case["ex"]
    out = ex.perfect(y) if which == "perfect" else ex.noise(y, np.random.default_rng(1))
    cols = tt.prediction_columns(info, out, y)
    assert cols and all(c.startswith(f"{info.name}_") for c in cols)
    assert set(tt.prediction_columns(info, out, None)) <= set(cols)  # without labels: fewer columns
    frame = pd.DataFrame(cols, index=case["ids"])
    assert set(tt.output_columns(info, frame)) <= set(frame.columns)
    scores = tt.case_scores(info, frame)
    assert list(scores) == list(tt.metrics)
    metrics = tt.metrics_of(info, out, y)
    identity = np.arange(N)[None, :]
    boot = np.random.default_rng(2).integers(0, N, (25, N))
    for m, scorer in scores.items():
        full = float(scorer(None))
        if m not in WORDS_ONLY:  # the table holds the written words, which only METEOR needs
            np.testing.assert_allclose(
                full, float(metrics[m]), rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=m
            )
        # A replicate that draws every case once is the metric itself; others are one value each.
        np.testing.assert_allclose(
            np.asarray(scorer(identity))[0], full, rtol=1e-9, equal_nan=True, err_msg=m
        )
        assert np.asarray(scorer(boot)).shape == (25,)
    strata = tt.strata(info, frame)
    assert strata is None or strata.shape == (N,)


def test_constant_predictions_are_recognised(case: dict[str, Any]) -> None:
    tt, info, y, ex = case["tt"], case["info"], case["y"], case["ex"]
    varied = pd.DataFrame(tt.prediction_columns(info, ex.perfect(y), y))
    same = pd.DataFrame(tt.prediction_columns(info, np.repeat(ex.perfect(y)[:1], N, axis=0), y))
    assert not tt.constant(info, varied) and tt.constant(info, same)


def test_a_bad_label_names_its_row_column_and_case(case: dict[str, Any]) -> None:
    tt, ex = case["tt"], case["ex"]
    if ex.bad is None:
        pytest.skip(f"every {tt.name} label cell is valid")
    pos, column, cell = ex.bad
    df = case["df"].copy()
    df[column] = df[column].astype(object)
    df.loc[pos, column] = cell
    src = LabelSource(df, case["ids"], case["cfg"], case["src"].open_image)
    with pytest.raises(DataError) as err:
        tt.encode(case["info"], src)
    assert (err.value.row, err.value.column, err.value.case_id) == (pos + 2, column, f"case{pos}")
    if tt.checked_per_cell:  # every bad cell is listed instead, for `fusiondx validate`
        errors: list[DataError] = []
        tt.encode(case["info"], src, errors)
        assert [(e.row, e.column) for e in errors] == [(pos + 2, column)]


def test_references_predict_it_in_the_shape_of_its_predictions(case: dict[str, Any]) -> None:
    tt, info, y = case["tt"], case["info"], case["y"]
    if not tt.estimator_labels:
        pytest.skip(f"no scikit-learn estimator predicts {tt.name} targets")
    if tt.reference_unavailable():
        pytest.skip(tt.reference_unavailable())
    signal = tt.stratification_key(info, y)
    X = np.c_[pd.factorize(signal)[0], np.random.default_rng(3).normal(size=(N, 2))]
    # The references are fitted on cases with a target (an unmeasured value is NaN).
    known = np.isfinite(y.reshape(N, -1).astype(np.float64)).all(axis=1)
    for family in tt.estimator_labels:
        _, estimator = tt.estimators(family, 0, False)[-1]
        estimator.fit(X[known], tt.fit_target(y[known]))
        out = tt.estimator_outputs(estimator, X, info)
        assert len(out) == N and np.isfinite(out).all()
        assert tt.prediction_columns(info, out, y)
        assert all(m in tt.metrics_of(info, out, y) for m in tt.metrics)


def test_samples_are_plain_data_and_html(case: dict[str, Any]) -> None:
    tt, info, y, ex = case["tt"], case["info"], case["y"], case["ex"]
    frame = pd.DataFrame(tt.prediction_columns(info, ex.perfect(y), y), index=case["ids"])
    files = {case["ids"][i]: c for i, c in enumerate(ex.labels.get("image", []))}
    s = tt.samples(
        info,
        Shown("a", "model a", frame),
        Shown("b", "model b", frame),
        lambda cid: ex.files[files[cid]],
    )
    if s is None:
        return
    assert s["kind"] == tt.name and (s["a"], s["b"]) == ("a", "b")
    if not isinstance(s.get("figure", ""), str):
        import matplotlib.pyplot as plt

        plt.close(s["figure"])
        s["figure"] = "data:image/png;base64,"
    text = tt.samples_html(
        s, lambda i: f"<{i}>", lambda uri, caption: f"<figure>{caption}</figure>"
    )
    assert "&lt;a&gt;" in text and "&lt;b&gt;" in text  # names are escaped


def test_a_new_task_type_is_one_module_and_passes_this_suite() -> None:
    """The worked example of docs/extending.md, registered from a package of its own."""
    import importlib.util

    saved = dict(TASK_TYPES._entries)
    path = Path(__file__).parent / "extra_tasks" / "ordinal.py"
    spec = importlib.util.spec_from_file_location("extra_tasks.ordinal", path)
    assert spec is not None and spec.loader is not None
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        assert "ordinal" in TASK_TYPES.names()
        case = _setup("ordinal")
        test_labels_are_parsed_and_encoded(case)
        test_perfect_predictions_score_best(case)
        for which in ("perfect", "noise"):
            test_case_scores_from_the_predictions_table_equal_the_metrics(case, which)
        test_constant_predictions_are_recognised(case)
        test_a_bad_label_names_its_row_column_and_case(case)
        test_references_predict_it_in_the_shape_of_its_predictions(case)
        test_samples_are_plain_data_and_html(case)
        # The regression head's default type is unchanged; the new one is chosen by name.
        df = pd.DataFrame({"wbc": ["7.1", "8.4", "5.0"]})
        task = load_config(
            {
                "name": "t",
                "data": {"manifest": "m.csv"},
                "modalities": [{"name": "labs", "kind": "tabular", "columns": ["age"]}],
                "tasks": [{"name": "wbc", "head": "regression", "label": "wbc"}],
            }
        ).tasks[0]
        assert infer_task(task, df).type == "regression"
        assert case["info"].type == "ordinal" and case["info"].classes == (
            "none",
            "mild",
            "moderate",
            "severe",
        )
    finally:
        TASK_TYPES._entries.clear()
        TASK_TYPES._entries.update(saved)
