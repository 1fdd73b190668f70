"""The served fast path changes no answer: the split graphs (encoders once, fusion + heads over
the masks) equal the whole model over masked copies, and the lean decoding gives the arrays
training's manifest decoding gives for the same case, errors included."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")

from fusiondx.serving.cases import CaseInput, from_form  # noqa: E402

MODALITIES = ["cxr", "ecg", "report", "labs"]


def _cases(service: Any, full_cases: pd.DataFrame, upload: Any) -> list[CaseInput]:
    """The full cases, then the first one without each modality in turn."""
    out = []
    rows = [(r, "") for _, r in full_cases.iterrows()]
    rows += [(full_cases.iloc[0], m) for m in MODALITIES]
    for row, skip in rows:
        files, data = upload(row, skip=skip)
        items = [(n, (f[0], f[1])) for n, f in files] + list(data.items())
        case = from_form(service.schema, items)
        case.case_id = f"{row.case_id}{'_without_' + skip if skip else ''}"
        out.append(case)
    return out


def _decoded(service: Any, decode: Callable[..., Any], cases: list[CaseInput]) -> Any:
    """``decode(cases, folder)`` in a fresh request folder, removed afterwards (as predict does)."""
    folder = service.request_folder()
    try:
        return decode(cases, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _same_store(a: Any, b: Any) -> None:
    assert list(a.ids) == list(b.ids) and a.modalities == b.modalities
    np.testing.assert_array_equal(a.mask, b.mask)
    for m in a.modalities:
        assert set(a.inputs[m]) == set(b.inputs[m])
        for k, x in a.inputs[m].items():
            y = np.asarray(b.inputs[m][k])
            assert x.dtype == y.dtype and x.shape == y.shape, (m, k)
            np.testing.assert_array_equal(x, y, err_msg=f"{m}.{k}")
    assert a.notes == b.notes


def test_split_graphs_equal_the_whole_model(
    service: Any, full_cases: pd.DataFrame, upload: Any
) -> None:
    assert service.split is not None, "the quick model (concat fusion) splits"
    store = _decoded(service, service.decode, _cases(service, full_cases, upload))
    split = service._answer(store)
    kept, service.split = service.split, None
    try:
        whole = service._answer(store)
    finally:
        service.split = kept
    assert len(split) == len(whole) == len(store)
    for s, w in zip(split, whole, strict=True):
        ps, pw = s["tasks"]["diagnosis"], w["tasks"]["diagnosis"]
        for c in ps["probabilities"]:
            assert abs(ps["probabilities"][c] - pw["probabilities"][c]) < 1e-6
        assert ps["prediction"] == pw["prediction"] and ps["set"] == pw["set"]
        for m in MODALITIES:
            assert s["modalities"][m] == pytest.approx(w["modalities"][m], abs=1e-6)
        cs, cw = s["contributions"], w["contributions"]
        assert cs["values"] == pytest.approx(cw["values"], abs=1e-6)
        assert cs["base"] == pytest.approx(cw["base"], abs=1e-6)


def test_lean_decoding_equals_training_decoding(
    service: Any, full_cases: pd.DataFrame, upload: Any, cohort_dir: Path, tmp_path: Path
) -> None:
    """The served arrays are those prepare_with_state gives for the same cases from the
    cohort's own files, and those of the manifest-row path the server used before."""
    from fusiondx.data.store import prepare_with_state

    cases = _cases(service, full_cases, upload)
    lean = _decoded(service, service.decode, cases)
    rows = _decoded(service, service.decode_as_manifest, cases)
    _same_store(lean, rows)
    # The same cases as a manifest of the cohort's files, each modality blanked as sent.
    blank = {
        "cxr": ["image"],
        "ecg": ["ecg"],
        "report": ["report"],
        "labs": [c for m in service.cfg.modalities if m.kind == "tabular" for c in m.columns],
    }
    frames = [full_cases]
    for m in MODALITIES:
        r = full_cases.iloc[[0]].copy()
        r[[c for c in blank[m] if c in r]] = np.nan
        frames.append(r)
    df = pd.concat(frames).reset_index(drop=True)
    df["case_id"] = [c.case_id for c in cases]
    # The upload fixture sends only these labs; the others are missing in the request.
    sent = {"age", "sex", "crp", "troponin", "smoker"}
    for c in blank["labs"]:
        if c not in sent and c in df:
            df[c] = np.nan
    manifest = tmp_path / "cases.csv"
    df.to_csv(manifest, index=False)
    cfg = service.cfg.model_copy(
        update={"data": service.cfg.data.model_copy(update={"manifest": manifest})}
    )
    trained = prepare_with_state(cfg, service.state, manifest, cohort_dir, need_labels=False)
    np.testing.assert_array_equal(lean.mask, trained.store.mask)
    for m in lean.modalities:
        for k, x in lean.inputs[m].items():
            np.testing.assert_array_equal(x, np.asarray(trained.store.inputs[m][k]), err_msg=m)


@pytest.mark.parametrize(
    "values",
    [
        {"age": " 61 ", "crp": "1e2", "sex": "X", "smoker": "1"},  # spaces, exponent, unseen
        {"age": 61, "troponin": 0.5, "sex": "F"},  # JSON numbers
        {"smoker": "0"},  # categories only
        {"age": "sixty", "crp": "inf"},  # two bad values: one error naming the first
    ],
)
def test_lean_tabular_values_and_errors_as_training(service: Any, values: dict[str, Any]) -> None:
    from fusiondx.errors import FusionDxError

    case = CaseInput("x", texts={"report": "chest pain\u200b and \tdyspnoea"}, values=values)
    got: list[Any] = []
    for decode in (service.decode, service.decode_as_manifest):
        try:
            got.append(_decoded(service, decode, [case, CaseInput("y", values={"age": "40"})]))
        except FusionDxError as err:
            got.append(err)
    lean, rows = got
    if isinstance(rows, FusionDxError):
        assert isinstance(lean, FusionDxError)
        assert (lean.what, lean.column, lean.case_id, lean.fix) == (
            rows.what,
            rows.column,
            rows.case_id,
            rows.fix,
        )
    else:
        _same_store(lean, rows)


def test_whitespace_only_report_is_missing_with_its_note(service: Any) -> None:
    case = CaseInput("w", texts={"report": "\u200b\u200b"}, values={"age": "50"})
    lean = _decoded(service, service.decode, [case])
    rows = _decoded(service, service.decode_as_manifest, [case])
    _same_store(lean, rows)
    assert not lean.mask[0, lean.modalities.index("report")] and lean.notes
