"""A request's cases decoded straight into a :class:`~fusiondx.data.store.CaseStore`, with the
run's fitted preprocessors applied case by case: no manifest rows, no pandas frame.

What training does per cell is done here the same way, so the arrays are the ones
:func:`fusiondx.data.store.prepare_with_state` gives for the same case (the tests hold them
equal):

- image and signal uploads are written (under names the server chooses, into the request's
  private folder) and decoded by the preprocessor's own ``load_case``: the confined readers of
  training, the same resizing / resampling;
- a text goes through the bytes a written-and-read ``.txt`` file would give (UTF-8, a byte-order
  mark dropped), the cleaning and the fitted tokenizer, without a file;
- tabular values are parsed by the same ``pandas.to_numeric`` call per cell, standardised with
  the training statistics and mapped to the training vocabularies.

Problems are collected case by case, modality by modality, and raised as one error as
:func:`fusiondx.data.store.build_store` raises them (same message, column and case id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.data.preprocessors import Preprocessor
from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.preprocessors.tabular import NOT_A_NUMBER_FIX, TabularPreprocessor
from fusiondx.data.preprocessors.text import TextPreprocessor, clean_text
from fusiondx.data.store import CaseStore
from fusiondx.errors import DataError, line_of, summarise
from fusiondx.serving.cases import CaseInput, _write_file


def decode_cases(
    cfg: Config,
    pre: dict[str, Preprocessor],
    cases: list[CaseInput],
    folder: Path,
    manifest: Path,
) -> CaseStore:
    """The cases' arrays, presence mask and notes (see the module docstring).

    ``folder`` is the request's private folder under the preprocessors' data root; ``manifest``
    is the name errors are located in (as :func:`~fusiondx.data.store.build_store` does).
    """
    n = len(cases)
    names = sorted(pre)
    mods = {m.name: m for m in cfg.modalities}
    # Every upload is checked by content and written before anything is decoded, as the
    # manifest rows were: a bad file is refused before a reader runs.
    paths: dict[str, dict[int, Path]] = {m: {} for m in names}
    for i, case in enumerate(cases):
        sub: Path | None = None
        for m in cfg.modalities:
            if m.kind in ("image", "signal") and m.name in case.files:
                if sub is None:
                    sub = folder / f"c{i}"
                    sub.mkdir()
                paths[m.name][i] = sub / _write_file(m.kind, m.name, case.files[m.name], sub)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    present: dict[str, np.ndarray] = {}
    errors: list[DataError] = []
    notes: list[str] = []
    ids = [c.case_id for c in cases]
    for name in names:
        p = pre[name]
        out = {k: np.zeros((n, *shape), dtype=dtype) for k, (shape, dtype) in p.shapes().items()}
        spec = mods[name]
        if isinstance(p, TabularPreprocessor):
            has = _tabular(p, cases, ids, out, errors)
            empty: list[int] = []
        elif isinstance(p, TextPreprocessor):
            has, empty = _text(p, cases, ids, out)
        elif isinstance(p, FilePreprocessor):
            column = str(getattr(spec, "column", name))  # image and signal modalities have one
            has, empty = _files(p, paths[name], ids, column, out, errors)
        else:  # pragma: no cover - every kind FusionDx has is handled above
            raise TypeError(f"no lean decoding for {type(p).__name__}")
        said = p.found()[1]
        has[np.asarray(empty, dtype=np.int64)] = False
        arrays[name], present[name] = out, has
        notes += said
    if errors:
        raise summarise(errors, manifest)
    mask = np.stack([present[m] for m in names], axis=1)
    return CaseStore(
        np.asarray(ids).astype(str), np.full(n, "").astype(str), names, arrays, mask, notes=notes
    )


def _files(
    p: FilePreprocessor,
    paths: dict[int, Path],
    ids: list[str],
    column: str,
    out: dict[str, np.ndarray],
    errors: list[DataError],
) -> tuple[np.ndarray, list[int]]:
    """``FilePreprocessor.transform`` over the written uploads."""
    has = np.zeros(len(ids), dtype=bool)
    if hasattr(p, "upscaled"):
        setattr(p, "upscaled", [])  # noqa: B010  (ImagePreprocessor.transform starts afresh too)
    for i, path in sorted(paths.items()):
        has[i] = True
        try:
            out[""][i] = p.load_case(path, ids[i])
        except DataError as err:
            errors.append(err.at(case_id=ids[i], row=line_of(i), column=column, file=path))
    return has, p.found()[0]


def _text(
    p: TextPreprocessor, cases: list[CaseInput], ids: list[str], out: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[int]]:
    """``TextPreprocessor.transform`` of the texts sent."""
    assert p.tokenizer is not None
    lower = p.cfg.preprocessing.lowercase
    has = np.zeros(len(cases), dtype=bool)
    texts: dict[int, str] = {}
    for i, case in enumerate(cases):
        raw = case.texts.get(p.name)
        if raw is None:
            continue
        has[i] = True
        # What writing it to a .txt file and reading that back gives (TxtReader: UTF-8, BOM dropped).
        texts[i] = clean_text(raw.encode("utf-8").decode("utf-8-sig"), lowercase=lower)
    p.blank = [(i, ids[i]) for i, t in texts.items() if not t]
    texts = {i: t for i, t in texts.items() if t}
    if texts:
        encoded = p.tokenizer.encode_batch(list(texts.values()))
        rows = np.fromiter(texts.keys(), dtype=np.int64)
        out[""][rows] = np.asarray([e.ids for e in encoded], dtype=np.int64)
    return has, p.found()[0]


def _tabular(
    p: TabularPreprocessor,
    cases: list[CaseInput],
    ids: list[str],
    out: dict[str, np.ndarray],
    errors: list[DataError],
) -> np.ndarray:
    """``TabularPreprocessor.check`` + ``transform`` of the values sent."""
    cols = p.cfg.columns
    has = np.array([any(c in case.values for c in cols) for case in cases], dtype=bool)
    raw = np.array(
        [[case.values.get(c, np.nan) for c in p.numeric] for case in cases], dtype=object
    ).reshape(len(cases), len(p.numeric))
    # One to_numeric call over every cell: it converts cell by cell, as the per-column calls do.
    num = np.asarray(
        pd.to_numeric(pd.Series(raw.ravel(), dtype=object), errors="coerce"), dtype=np.float64
    ).reshape(raw.shape)
    given = ~pd.isna(raw)
    bad = (np.isnan(num) & given) | np.isinf(num)
    before = len(errors)
    for j, col in enumerate(p.numeric):  # column by column, as check() reports them
        for i in np.flatnonzero(bad[:, j]):
            errors.append(
                DataError(
                    f"The value '{raw[i, j]}' is not a finite number.",
                    row=line_of(int(i)),
                    column=col,
                    case_id=ids[i],
                    fix=NOT_A_NUMBER_FIX,
                )
            )
    if len(errors) > before:
        return has
    x = np.where(np.isfinite(num), num, np.nan)
    rows = np.flatnonzero(has)
    values = [[cases[i].values.get(col, np.nan) for i in rows] for col in p.categorical]
    z, missing, cat = p.encode(x[rows], values)
    out["numeric"][rows] = z
    out["numeric_missing"][rows] = missing
    if p.categorical:
        out["categorical"][rows] = cat
    return has
