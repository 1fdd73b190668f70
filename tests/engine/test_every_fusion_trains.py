"""Every registered fusion trains end to end through `fit` on the built-in cohort with 30% of
modalities missing at random: no NaN, and better than chance on the test split.

800 cases at 32x32 for 8 epochs keeps each run near 8 s; on the full demo cohort the same
strategies reached test AUROC 0.87-0.97 after 4-6 epochs when this was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx
from fusiondx.registry import list_fusions

# Every strategy trained end to end on 800 cases: minutes on 2 cores; `make test-all` runs it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def missing_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusiondx.datasets.synthetic import make_cohort

    return make_cohort(
        tmp_path_factory.mktemp("missing30"), n_cases=800, seed=3, image_size=32, missing_rate=0.3
    )


@pytest.mark.parametrize("fusion", list_fusions())
def test_fusion_trains_with_30_percent_missing(
    fusion: str, missing_cohort: Path, tmp_path: Path, quick_config: dict[str, Any]
) -> None:
    cfg = quick_config
    cfg["data"]["manifest"] = str(missing_cohort)
    # One decode of the 800 cases for every strategy (the study's shared disk cache).
    cfg["data"].update(cache="disk", cache_dir=str(missing_cohort.parent / ".cache"))
    cfg["output_dir"] = str(tmp_path)
    cfg["fusion"] = {"name": fusion, "dim": 32}
    cfg["train"].update({"epochs": 8, "modality_dropout": 0.1})
    res = fusiondx.fit(cfg)
    preds = pd.read_csv(res.run_dir / "predictions.csv")
    assert np.isfinite(preds["diagnosis_prob_disease"]).all()
    assert res.metrics["test"]["diagnosis"]["auroc"] > 0.55, res.metrics["test"]["diagnosis"]
