"""Every problem the manifest's cells show, found before any file is read.

``check_cells`` appends one :class:`DataError` per problem (a missing column once, every bad row
of every column) instead of stopping at the first: ``prepare`` stops a run on them with the first
and a count of the others, and ``fusiondx validate`` lists them all, grouped per column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fusiondx.config import Config, TabularModality
from fusiondx.data.labels import encode_targets
from fusiondx.data.manifest import check_manifest
from fusiondx.data.preprocessors import make_preprocessor
from fusiondx.errors import DataError
from fusiondx.tasks import config_type, infer_task


def check_cells(df: pd.DataFrame, cfg: Config, path: Path, errors: list[DataError]) -> None:
    """Append every problem of a new run's manifest that needs no file: missing columns, empty
    or repeated ids, empty labels, labels outside the declared classes, values that are not
    numbers in numeric columns, and tabular columns empty for every case."""
    check_manifest(df, cfg, path, errors=errors)
    ids = df[cfg.data.id_column] if cfg.data.id_column in df.columns else None
    for t in cfg.tasks:
        cols = [t.label] if isinstance(t.label, str) else list(t.label)
        if not config_type(t).checked_per_cell or any(c not in df.columns for c in cols):
            continue  # other task types are checked with their targets; missing columns are reported
        try:
            info = infer_task(t, df, cfg)
        except DataError as err:
            errors.append(err)
            continue
        # Empty labels are reported by check_manifest; every other value is checked here.
        encode_targets(info, df, ids, cfg, errors=errors)
    for m in cfg.modalities:
        if not isinstance(m, TabularModality):
            continue
        cols = [c for c in m.columns if c in df.columns]
        if not cols or df[cols].isna().all(axis=None):
            continue  # missing columns, or the whole modality empty: reported by check_manifest
        for c in cols:
            if df[c].isna().all():
                errors.append(
                    DataError(
                        f"Column '{c}' of tabular modality '{m.name}' is empty for every case.",
                        column=c,
                        fix=f"fill it or remove it from modalities[{m.name}].columns",
                    )
                )
        make_preprocessor(m, cfg.data.data_root).check(df, ids, errors)
