"""The cohort split into sites: each site's own manifest, its own train/val/test split.

Each site's cases are split the way the config says, as that site would split them alone
(``label_cases`` on the site's rows); the splits are then written into every manifest as one
split column, so that the federated model, the centralised one and each site's own model are
tested on exactly the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fusiondx.config import Config
from fusiondx.data.labelling import label_cases
from fusiondx.data.sites import read_sites, site_slug
from fusiondx.errors import DataError

SPLIT_COLUMN = "fusiondx_federated_split"
MIN_CASES = 8
"""Fewest cases a site may hold: fewer cannot give it a train, a val and a test split."""


@dataclass
class Site:
    """One site: its name, its manifest (its rows only) and its config."""

    name: str
    manifest: Path
    cfg: Config
    n_cases: int


@dataclass
class Cohort:
    """Every site, and the pooled manifest with the same split column (for the centralised run)."""

    sites: list[Site]
    pooled: Config
    site_of: dict[str, str]  # case id -> site


def split_sites(cfg: Config, column: str, out_dir: Path) -> Cohort:
    """Write ``out_dir/manifests/<site>.csv`` and ``all.csv`` with one split column."""
    df, names = read_sites(
        cfg,
        column,
        purpose="to federate (each site holds its own train, val and test cases)",
        min_cases=MIN_CASES,
    )
    folder = out_dir / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    root = cfg.data.data_root.resolve()
    ids = df[cfg.data.id_column].astype(str)
    split = pd.Series("", index=df.index, dtype=object)
    sites: list[Site] = []
    for name in names:
        rows = df[df[column].astype(str) == name]
        path = folder / f"{site_slug(name)}.csv"
        rows.to_csv(path, index=False, lineterminator="\n")
        site_cfg = _with_manifest(cfg, path, root)
        try:
            split.loc[rows.index] = label_cases(site_cfg).split
        except DataError as err:
            raise DataError(
                f"Site '{name}' cannot be split on its own: {err.what}",
                file=cfg.data.manifest,
                column=column,
                fix=err.fix or "give the site more cases of every class",
            ) from None
        sites.append(Site(name, path, site_cfg, len(rows)))
    df[SPLIT_COLUMN] = split
    for site in sites:
        rows = df[df[column].astype(str) == site.name]
        rows.to_csv(site.manifest, index=False, lineterminator="\n")
        site.cfg = _with_split_column(site.cfg)
    pooled = folder / "all.csv"
    df.to_csv(pooled, index=False, lineterminator="\n")
    site_of = dict(zip(ids, df[column].astype(str), strict=True))
    return Cohort(sites, _with_split_column(_with_manifest(cfg, pooled, root)), site_of)


def _with_manifest(cfg: Config, manifest: Path, root: Path) -> Config:
    data = cfg.data.model_copy(update={"manifest": manifest, "root": root})
    return cfg.model_copy(update={"data": data})


def _with_split_column(cfg: Config) -> Config:
    split = cfg.data.split.model_copy(update={"column": SPLIT_COLUMN, "folds": None})
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"split": split})})
