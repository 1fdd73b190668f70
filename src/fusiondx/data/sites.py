"""The manifest's sites (hospitals, scanners): read and checked once for every use of them.

Leave-one-site-out studies and federated training both split a cohort by a site column; both
need the same checks, worded for what the sites are for.
"""

from __future__ import annotations

import re

import pandas as pd

from fusiondx.config import Config
from fusiondx.data.manifest import read_manifest
from fusiondx.errors import ConfigError, DataError, did_you_mean


def site_slug(site: str) -> str:
    """A site's name as a file or run name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", site)


def read_sites(
    cfg: Config, column: str, *, purpose: str, min_cases: int = 1
) -> tuple[pd.DataFrame, list[str]]:
    """The manifest and its sites, sorted, checked: the column exists, every case has a site,
    there are at least two, each with at least ``min_cases`` cases. ``purpose`` ends the
    errors' sentences ("for leave-one-site-out", "to federate")."""
    path = cfg.data.manifest
    df = read_manifest(path, sep=cfg.data.sep, id_column=cfg.data.id_column)
    if column not in df.columns:
        raise DataError(
            f"The manifest has no site column '{column}' (named by --site-column)."
            f"{did_you_mean(column, df.columns)}",
            file=path,
            column=column,
            fix=f"use one of the manifest's columns: {', '.join(map(str, df.columns))}",
        )
    blank = df[column].isna()
    if blank.any():
        raise DataError(
            f"{int(blank.sum())} case(s) have no site in column '{column}'.",
            file=path,
            column=column,
            case_id=str(df.loc[blank, cfg.data.id_column].iloc[0]),
            fix=f"fill the site of every case (or drop those cases) {purpose}",
        )
    counts = df[column].astype(str).value_counts()
    if len(counts) < 2:
        raise ConfigError(
            f"Column '{column}' of {path} holds one site only ({counts.index[0]}): two are "
            f"needed {purpose}.",
            fix="use a column with at least two sites",
        )
    small = counts[counts < min_cases]
    if len(small):
        raise DataError(
            f"Site '{small.index[0]}' has {int(small.iloc[0])} case(s) in column '{column}'; a "
            f"site needs at least {min_cases} {purpose}.",
            file=path,
            column=column,
            fix="merge the small site(s) into another site, or leave them out of the manifest",
        )
    return df, sorted(counts.index)
