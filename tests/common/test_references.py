"""Every registered study reference and probe, on every task type it claims: it learns what its
inputs carry, fits on the training cases only, is tuned on validation only, and is deterministic.

The case table is made here (no files): each input group carries a different part of the label,
so every reference has something to learn from its own inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from fusiondx.evaluation.classification import metric_value
from fusiondx.references._table import CaseTable, Group
from fusiondx.registry import REFERENCES
from fusiondx.tasks import TaskInfo

N = 360
CLASSES = {
    "binary": ("no", "yes"),
    "multiclass": ("a", "b", "c"),
    "multilabel": ("x", "y", "z"),
    "regression": (),
    "survival": (),
}
METRIC = {
    "binary": "auroc",
    "multiclass": "auroc",
    "multilabel": "auroc",
    "regression": "r2",
    "survival": "c_index",
}
WORDS = ["clear", "normal", "stable", "mild", "nodule", "small", "opacity", "effusion", "edema"]


def _table(seed: int = 0) -> tuple[CaseTable, np.ndarray, np.ndarray]:
    """Cases whose latent score z shows in every group; returns (table, z, split)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, N)
    noise = lambda s=1.0: rng.normal(0, s, N)  # noqa: E731
    present_labs = rng.random(N) < 1 / (1 + np.exp(-4 * z))  # the ordering pattern tells z
    cols: dict[str, Any] = {
        "labs.crp": np.where(present_labs, z + noise(0.7), np.nan),
        "labs.age": 60 + 10 * noise(),
        "labs.sex": np.where(z + noise() > 0, "M", "F").astype(object),
        "report": np.array(
            [
                " ".join(rng.choice(WORDS[3 * b : 3 * b + 3], 4))
                for b in np.digitize(z + noise(0.5), [-0.4, 0.4])
            ],
            dtype=object,
        ),
        "meta.site": np.where(z + noise(0.5) > 0, "A", "B").astype(object),
    }
    px = z[:, None] * np.linspace(-1, 1, 16)[None, :] + rng.normal(0, 1, (N, 16))
    cols |= {f"cxr.px{k}": px[:, k] for k in range(16)}
    cols |= {
        "ecg.lead0.std": np.exp(0.3 * z + noise(0.3)),
        "ecg.lead0.dom_freq": 1 + z**2 + noise(0.5),
    }
    for m in ("labs", "report", "cxr", "ecg"):
        cols[f"present.{m}"] = present_labs.astype(float) if m == "labs" else np.ones(N)
    cols |= {
        "present.labs.crp": present_labs.astype(float),
        "present.labs.age": present_labs.astype(float),
        "present.labs.sex": present_labs.astype(float),
    }
    ids = np.array([f"c{i}" for i in range(N)])
    groups = {
        "labs": Group(
            "tabular",
            numeric=["labs.crp", "labs.age"],
            categorical=["labs.sex"],
            present="present.labs",
        ),
        "report": Group("text", text="report", present="present.report"),
        "cxr": Group("image", numeric=[f"cxr.px{k}" for k in range(16)], present="present.cxr"),
        "ecg": Group(
            "signal", numeric=["ecg.lead0.std", "ecg.lead0.dom_freq"], present="present.ecg"
        ),
        "presence": Group("presence", numeric=[c for c in cols if c.startswith("present.")]),
        "metadata": Group("metadata", categorical=["meta.site"]),
    }
    split = np.array(["train"] * 240 + ["val"] * 60 + ["test"] * 60)
    return CaseTable(ids, pd.DataFrame(cols, index=ids), groups, "fixture"), z, split


def _targets(task_type: str, z: np.ndarray, seed: int = 1) -> tuple[TaskInfo, np.ndarray]:
    rng = np.random.default_rng(seed)
    info = TaskInfo("t", task_type, CLASSES[task_type], ("label",))
    if task_type == "binary":
        return info, (z > 0).astype(np.float32)
    if task_type == "multiclass":
        return info, np.digitize(z, [-0.4, 0.4]).astype(np.int64)
    if task_type == "multilabel":
        return info, np.stack([z > 0, z > 0.7, z < -0.5], axis=1).astype(np.float32)
    if task_type == "regression":
        return info, (2 * z + 5).astype(np.float64)
    time = rng.exponential(1.0, len(z)) / np.exp(1.5 * z)
    return info, np.stack([time, (rng.random(len(z)) < 0.8).astype(float)], axis=1)


def _cases() -> list[tuple[str, str]]:
    out = []
    for name in REFERENCES.names():
        for t in REFERENCES.get(name).cls.task_types:
            out.append((name, t))
    return out


def _group(ref: Any, table: CaseTable) -> str | None:
    kinds = {"image": "cxr", "signal": "ecg", "text": "report", "tabular": "labs"}
    return kinds.get(ref.inputs)


def _base(table: CaseTable, info: TaskInfo) -> dict[str, Any]:
    from fusiondx.references.tabular_logistic import LogisticReference
    from fusiondx.references.text_tfidf import TfidfReference

    first = "alpha" if info.type in ("regression", "survival") else "C"
    value = 10.0 if first == "alpha" else 1.0
    return {
        "labs": (LogisticReference(), {first: value}),
        "report": (TfidfReference(), {first: value}),
    }


@pytest.fixture(scope="module")
def table() -> tuple[CaseTable, np.ndarray, np.ndarray]:
    return _table()


def _fit(name: str, task_type: str, table: CaseTable, split: np.ndarray, z: np.ndarray) -> Any:
    ref = REFERENCES.create(name)
    info, y = _targets(task_type, z)
    g = _group(ref, table)
    why = ref.unavailable(table, g, info)
    if why:
        pytest.skip(why)
    base = _base(table, info) if ref.needs_base else None
    return ref, info, y, ref.fit(table, g, info, y, split, METRIC[task_type], seed=0, base=base)


@pytest.mark.parametrize(("name", "task_type"), _cases())
def test_reference_learns_its_inputs_and_outputs_the_task_shape(
    name: str, task_type: str, table: Any
) -> None:
    tab, z, split = table
    ref, info, y, fitted = _fit(name, task_type, tab, split, z)
    n_val, n_test = int((split == "val").sum()), int((split == "test").sum())
    k = len(info.classes)
    shape = {"binary": (n_test,), "multiclass": (n_test, k), "multilabel": (n_test, k)}.get(
        task_type, (n_test,)
    )
    assert fitted.test.shape == shape and len(fitted.val) == n_val
    assert np.isfinite(fitted.test).all()
    if info.is_classification:
        assert (fitted.test >= 0).all() and (fitted.test <= 1).all()
    if task_type == "multiclass":
        np.testing.assert_allclose(fitted.test.sum(axis=1), 1.0, atol=1e-6)
    from fusiondx.references._base import score_of

    score = score_of(METRIC[task_type], info, y[split == "test"], fitted.test)
    floor = {"auroc": 0.6, "c_index": 0.55, "r2": 0.05}[METRIC[task_type]]
    assert score > floor, f"{name} on {task_type}: test {METRIC[task_type]} {score:.3f}"


@pytest.mark.parametrize("name", REFERENCES.names())
def test_reference_is_fitted_on_train_and_tuned_on_validation_only(name: str, table: Any) -> None:
    """Changing the test cases' inputs and labels changes nothing the reference chose."""
    tab, z, split = table
    ref, info, y, fitted = _fit(name, "binary", tab, split, z)
    test = split == "test"
    rng = np.random.default_rng(7)
    other = CaseTable(tab.ids, tab.frame.copy(), tab.groups, "changed")
    for col in other.frame.columns:
        values = other.frame[col].to_numpy()
        other.frame.loc[test, col] = rng.permutation(values[test])
    y2 = y.copy()
    y2[test] = 1 - y2[test]
    base = _base(other, info) if ref.needs_base else None
    again = ref.fit(other, _group(ref, other), info, y2, split, "auroc", seed=0, base=base)
    assert again.params == fitted.params
    np.testing.assert_allclose(again.val, fitted.val, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", REFERENCES.names())
def test_reference_is_deterministic_and_rebuilt_from_its_config(name: str, table: Any) -> None:
    tab, z, split = table
    ref, info, y, fitted = _fit(name, "binary", tab, split, z)
    clone = type(ref)(**ref.get_config())
    base = _base(tab, info) if ref.needs_base else None
    again = clone.fit(tab, _group(ref, tab), info, y, split, "auroc", seed=0, base=base)
    np.testing.assert_allclose(again.test, fitted.test, rtol=1e-7, atol=1e-10)
    assert again.params == fitted.params


def test_probes_say_why_they_cannot_run() -> None:
    tab, z, _ = _table()
    info, _ = _targets("binary", z)
    no_meta = CaseTable(
        tab.ids, tab.frame, {k: v for k, v in tab.groups.items() if k != "metadata"}, "x"
    )
    assert "metadata_columns" in REFERENCES.create("metadata").unavailable(no_meta, None, info)
    full = tab.frame.copy()
    for c in tab.groups["presence"].numeric:
        full[c] = 1.0
    complete = CaseTable(tab.ids, full, tab.groups, "y")
    assert "every case has every input" in REFERENCES.create("presence").unavailable(
        complete, None, info
    )


def test_the_presence_probe_reads_the_ordering_pattern(table: Any) -> None:
    tab, z, split = table
    _, info, y, fitted = _fit("presence", "binary", tab, split, z)
    assert metric_value("auroc", y[split == "test"], fitted.test, "binary") > 0.65
