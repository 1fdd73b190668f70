"""Federated preprocessing statistics: the sites' parts merged equal a fit on the pooled cases."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusiondx.config import load_config
from fusiondx.data.store import prepare
from fusiondx.errors import ConfigError, DataError
from fusiondx.federated.site import merge_statistics, site_statistics
from fusiondx.federated.sites import SPLIT_COLUMN, split_sites


@pytest.fixture(scope="module")
def fed_cfg(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    d = copy.deepcopy(quick_base)
    d["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    d["output_dir"] = str(tmp_path_factory.mktemp("fedruns"))
    return load_config(d)


def test_merged_statistics_equal_pooled_fit(fed_cfg: Any, tmp_path: Path) -> None:
    cohort = split_sites(fed_cfg, "site", tmp_path)
    assert len(cohort.sites) == 3
    # Every case is in exactly one site, with the same split in its site manifest and the pool.
    assert sum(s.n_cases for s in cohort.sites) == len(cohort.site_of)
    parts = [site_statistics(s.cfg) for s in cohort.sites]
    # What travels is aggregates: no case id, no report text.
    blob = json.dumps(parts)
    assert "case_" not in blob
    merged = merge_statistics(fed_cfg, parts)
    pooled = prepare(cohort.pooled).state()["preprocessors"]
    np.testing.assert_allclose(merged["labs"]["mean"], pooled["labs"]["mean"], rtol=1e-9)
    np.testing.assert_allclose(merged["labs"]["std"], pooled["labs"]["std"], rtol=1e-9)
    assert merged["labs"]["vocab"] == pooled["labs"]["vocab"]
    vocab = json.loads(merged["report"]["tokenizer"])["model"]["vocab"]
    assert vocab == json.loads(pooled["report"]["tokenizer"])["model"]["vocab"]
    assert merged["ecg"]["n_leads"] == pooled["ecg"]["n_leads"]
    assert merged["cxr"] == pooled["cxr"]


def test_site_split_column_is_written(fed_cfg: Any, tmp_path: Path) -> None:
    import pandas as pd

    cohort = split_sites(fed_cfg, "site", tmp_path)
    pooled = pd.read_csv(cohort.pooled.data.manifest)
    assert set(pooled[SPLIT_COLUMN]) == {"train", "val", "test"}
    for s in cohort.sites:
        own = pd.read_csv(s.manifest)
        assert set(own["site"].astype(str)) == {s.name}
        assert set(own[SPLIT_COLUMN]) == {"train", "val", "test"}


def test_missing_site_column(fed_cfg: Any, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no site column 'hospital'") as e:
        split_sites(fed_cfg, "hospital", tmp_path)
    assert e.value.fix and "site" in e.value.fix


def test_site_with_too_few_rows(fed_cfg: Any, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(fed_cfg.data.manifest)
    df.loc[df.index[:3], "site"] = "tiny_clinic"
    path = tmp_path / "manifest.csv"
    df.to_csv(path, index=False)
    cfg = fed_cfg.model_copy(
        update={
            "data": fed_cfg.data.model_copy(
                update={"manifest": path, "root": fed_cfg.data.data_root}
            )
        }
    )
    with pytest.raises(DataError, match="Site 'tiny_clinic' has 3 case"):
        split_sites(cfg, "site", tmp_path / "out")


def test_one_site_only(fed_cfg: Any, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(fed_cfg.data.manifest)
    df["site"] = "only"
    path = tmp_path / "manifest.csv"
    df.to_csv(path, index=False)
    cfg = fed_cfg.model_copy(
        update={
            "data": fed_cfg.data.model_copy(
                update={"manifest": path, "root": fed_cfg.data.data_root}
            )
        }
    )
    with pytest.raises(ConfigError, match="one site only"):
        split_sites(cfg, "site", tmp_path / "out")
