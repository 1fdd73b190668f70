"""Shared fixtures: a small built-in cohort on disk and a quick config over it."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs a worker per core) each worker computes on one
    thread: two workers of two threads each on two cores would fight over them.

    The quick config's runs share one disk cache of decoded cases for the whole session
    (workers included): hundreds of runs over the same cohort decode it once, and the disk cache
    path gets exercised by every test that trains."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ["FUSIONDX_THREADS"] = "1"  # what fit and its subprocesses take, too
    else:
        os.environ["FUSIONDX_TEST_CACHE"] = tempfile.mkdtemp(prefix="fusiondx-test-cache-")
    QUICK["data"]["cache_dir"] = os.environ["FUSIONDX_TEST_CACHE"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop("FUSIONDX_TEST_CACHE", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 160-case built-in cohort (32x32 images) written once per test session."""
    from fusiondx.datasets.synthetic import make_cohort

    out = tmp_path_factory.mktemp("cohort")
    make_cohort(out, n_cases=160, seed=1, image_size=32, missing_rate=0.15)
    return out


@pytest.fixture(scope="module")
def one_thread() -> Any:
    """Tiny tensors run faster on one thread, and a shared 2-core machine stays responsive."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


QUICK: dict[str, Any] = {
    "name": "quick",
    "seed": 0,
    # cache_dir: a session-wide folder, set in pytest_configure.
    "data": {"manifest": "manifest.csv", "patient_column": "patient_id", "cache": "disk"},
    "modalities": [
        {
            "name": "cxr",
            "kind": "image",
            "column": "image",
            "preprocessing": {"size": [32, 32]},
            "encoder": {"name": "cnn"},
        },
        {
            "name": "ecg",
            "kind": "signal",
            "column": "ecg",
            "preprocessing": {"rate": 50, "length": 500},
        },
        {
            "name": "report",
            "kind": "text",
            "column": "report",
            "preprocessing": {"vocab_size": 200, "max_length": 32},
        },
        {
            "name": "labs",
            "kind": "tabular",
            "columns": ["age", "sex", "crp", "troponin", "smoker"],
            "categorical": ["sex", "smoker"],
        },
    ],
    "fusion": {"name": "concat", "dim": 16},
    "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "progress": False,
        "early_stopping": None,
        "small_data": "off",
    },  # tests of other parts do not depend on the small-data policy
}


if os.environ.get("FUSIONDX_TEST_CACHE"):  # this module imported again by a test, by path
    QUICK["data"]["cache_dir"] = os.environ["FUSIONDX_TEST_CACHE"]


@pytest.fixture(scope="session")
def quick_base() -> dict[str, Any]:
    """The quick config without data paths, for fixtures broader than one test."""
    return copy.deepcopy(QUICK)


@pytest.fixture
def quick_config(cohort_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """A fast config over the session cohort; runs go to this test's tmp_path."""
    cfg = copy.deepcopy(QUICK)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path / "runs")
    return cfg
