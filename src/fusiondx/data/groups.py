"""Subgroup labels of every case (``fairness.columns``), read beside the model's inputs.

They travel with the store into the predictions table as ``group:<column>`` so that
``evaluate`` and the study can score each subgroup without the manifest; they are never
model inputs. A blank cell is the subgroup ``missing``; a band (``fairness.bands``) cuts a
numeric column at its edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.config.fairness import BandConfig
from fusiondx.errors import DataError, case_of, line_of, summarise

GROUP_PREFIX = "group:"
MISSING = "missing"


def group_column(name: str) -> str:
    """The predictions-table column of subgroup column ``name``."""
    return f"{GROUP_PREFIX}{name}"


def case_groups(cfg: Config, df: pd.DataFrame, path: Path) -> dict[str, np.ndarray]:
    """Column -> each case's subgroup label (str), in manifest order; {} without fairness.

    The columns are checked to exist by ``check_manifest``; here a band's column must hold
    numbers (every bad cell is reported, with its row and case id).
    """
    fc = cfg.fairness
    ids = df[cfg.data.id_column] if cfg.data.id_column in df.columns else None
    out: dict[str, np.ndarray] = {}
    errors: list[DataError] = []
    for name in fc.columns:
        band = fc.bands.get(name)
        if band is None:
            cells = df[name]
            out[name] = np.where(
                cells.isna(), MISSING, cells.astype(str).str.strip().replace("", MISSING)
            ).astype(str)
        else:
            out[name] = _bands(band, df, name, ids, errors)
    if errors:
        raise summarise(errors, path)
    return out


def _bands(
    band: BandConfig, df: pd.DataFrame, name: str, ids: pd.Series | None, errors: list[DataError]
) -> np.ndarray:
    raw = df[band.column]
    values = pd.to_numeric(raw, errors="coerce")
    for i in np.flatnonzero((values.isna() & raw.notna()).to_numpy()):
        errors.append(
            DataError(
                f"'{raw.iloc[i]}' is not a number, so fairness band '{name}' cannot place it.",
                row=line_of(int(i)),
                column=band.column,
                case_id=case_of(ids, int(i)),
                fix=f"write a number (or leave the cell blank), or remove '{name}' from "
                "fairness.columns",
            )
        )
    labels = np.array(band.labels())
    where = np.searchsorted(np.asarray(band.edges), values.fillna(0).to_numpy(), side="right")
    return np.where(values.isna().to_numpy(), MISSING, labels[where]).astype(str)
