"""What ``fusiondx validate`` runs: everything a new run prepares, listing every problem.

A run (``prepare``) stops before reading any file when the manifest's cells show problems, with
the first and a count of the others. Validation goes on as far as those problems allow: it also
decodes every file (preprocessing fitted on every case, as no split can be trusted yet), so one
run lists the bad cells, the split problem if any, and every unreadable file together.
"""

from __future__ import annotations

import pandas as pd

from fusiondx.config import Config, TabularModality
from fusiondx.data.checks import check_cells
from fusiondx.data.manifest import modality_present, read_manifest
from fusiondx.data.preprocessors import Preprocessor, make_preprocessor
from fusiondx.data.store import Prepared, build_store, prepare
from fusiondx.errors import DataError, summarise


def check_data(cfg: Config, *, progress: bool = False) -> Prepared:
    """Prepare a new run as ``fit`` would; on any problem, raise one error standing for all of
    them, whose ``all_errors`` lists every problem found (cells, split, files)."""
    path = cfg.data.manifest
    df = read_manifest(path, sep=cfg.data.sep, id_column=cfg.data.id_column)
    problems: list[DataError] = []
    check_cells(df, cfg, path, problems)
    if not problems:
        try:
            return prepare(cfg, progress=progress)
        except DataError as err:
            if hasattr(err, "all_errors"):
                raise  # from decoding, which tried every file
            problems.append(err)  # a split or target problem, found before any file was read
    problems += _file_problems(cfg, df, progress=progress)
    seen: set[tuple[object, ...]] = set()
    unique = []
    for e in problems:
        key = (type(e), e.what, e.row, e.column, e.case_id, None if e.file == str(path) else e.file)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    raise summarise(unique, path)


def _file_problems(cfg: Config, df: pd.DataFrame, *, progress: bool) -> list[DataError]:
    """Decode every file of every modality that can be read at all; the problems met."""
    if cfg.data.id_column not in df.columns:
        return []  # cases cannot be named
    ids = df[cfg.data.id_column].astype(str)
    found: list[DataError] = []
    pre: dict[str, Preprocessor] = {}
    for m in cfg.modalities:
        cols = m.columns if isinstance(m, TabularModality) else [m.column]
        if isinstance(m, TabularModality) or any(c not in df.columns for c in cols):
            continue  # tabular cells are checked by check_cells; missing columns are reported
        present = modality_present(df, m)
        if not present.any():
            continue
        p = make_preprocessor(m, cfg.data.data_root)
        try:
            p.fit(df, present, ids)  # on every case: only to be able to read the files
        except DataError as err:
            found.append(err)
            continue
        pre[m.name] = p
    if pre:
        sub = cfg.model_copy(update={"modalities": [m for m in cfg.modalities if m.name in pre]})
        try:
            build_store(sub, df, ids, pre, progress=progress)
        except DataError as err:
            found += getattr(err, "all_errors", [err])
    return found
