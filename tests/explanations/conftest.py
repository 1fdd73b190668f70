"""One quick run (one epoch on the session cohort) shared by the explanation tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def quick_run(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from fusiondx.config import Config
    from fusiondx.engine.run import fit

    cfg = copy.deepcopy(quick_base)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path_factory.mktemp("explain_runs"))
    cfg["train"]["epochs"] = 1
    return fit(Config.model_validate(cfg)).run_dir


@pytest.fixture(scope="module")
def loaded(quick_run: Path) -> tuple[Any, Any, Any]:
    """(cfg, model, prepared) of the quick run over its own manifest."""
    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine.rundir import RunDir

    cfg, model, state = RunDir(quick_run).load()
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=True
    )
    return cfg, model, prepared
