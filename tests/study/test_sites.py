"""Shift across sites: leave-one-site-out end to end on a tiny cohort with a planted site
shift, its errors, and the drift score."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.evaluation.drift import domain_auroc

runner = CliRunner()


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusiondx.datasets.synthetic import make_cohort

    return make_cohort(
        tmp_path_factory.mktemp("shifted"), n_cases=150, seed=5, image_size=32, site_shift=2.0
    )


def _config(quick: dict[str, Any], manifest: Path, tmp: Path) -> Path:
    cfg = copy.deepcopy(quick)
    cfg["data"]["manifest"] = str(manifest)
    cfg["output_dir"] = str(tmp / "runs")
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] in ("report", "labs")]
    cfg["train"]["epochs"] = 1
    cfg["study"] = {"seeds": 1, "references": [], "n_boot": 100}
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_leave_one_site_out_end_to_end(
    quick_base: dict[str, Any], shifted: Path, tmp_path: Path
) -> None:
    path = _config(quick_base, shifted, tmp_path)
    out = tmp_path / "sites"
    res = runner.invoke(app, ["study", str(path), "--site-column", "site", "--out", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    manifest = pd.read_csv(shifted, dtype=str)
    assert r["protocol"] == "sites" and r["sites"] == ["site_A", "site_B", "site_C"]
    rows = {e["site"]: e for e in r["entries"] if e["site"]}
    assert set(rows) == set(r["sites"])
    for site, e in rows.items():
        # every case of the held-out site is tested, and only those
        assert e["n_test"] == int((manifest["site"] == site).sum())
        h = e["held_out"]
        assert h["low"] <= h["mean"] <= h["high"]
        assert 0.0 <= e["drift_auroc"] <= 1.0
        split = pd.read_csv(out / "manifests" / f"without_{site}.csv", dtype=str)
        test = split["fusiondx_site_split"] == "test"
        assert (split.loc[test, "site"] == site).all() and (split.loc[~test, "site"] != site).all()
        assert not set(split.loc[test, "patient_id"]) & set(split.loc[~test, "patient_id"])
        assert {"train", "val"} <= set(split.loc[~test, "fusiondx_site_split"])
    pooled = next(e for e in r["entries"] if not e["site"])
    assert pooled["pooled"]["low"] <= pooled["pooled"]["mean"] <= pooled["pooled"]["high"]
    assert "leave one site out" in (out / "report.html").read_text()
    assert "Wrote" in res.output


def test_site_column_errors(quick_base: dict[str, Any], shifted: Path, tmp_path: Path) -> None:
    path = _config(quick_base, shifted, tmp_path)
    bad = runner.invoke(app, ["study", str(path), "--site-column", "hospital"])
    assert bad.exit_code != 0
    assert "no site column 'hospital'" in bad.output and "site" in bad.output
    both = runner.invoke(
        app, ["study", str(path), "--site-column", "site", "--train-missing", "0,0.3"]
    )
    assert both.exit_code != 0 and "one at a time" in both.output


def test_drift_score_reads_like_an_auroc() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    assert abs(domain_auroc(a, b) - 0.5) < 0.1
    assert domain_auroc(a, b + 1.5) > 0.95
    assert np.isnan(domain_auroc(a[:3], b[:3]))
