"""Encoder test setup: the shared tiny specs (tests/common/specs.py) importable as ``specs``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_COMMON = str(Path(__file__).resolve().parents[1] / "common")
if _COMMON not in sys.path:
    sys.path.insert(0, _COMMON)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread: None) -> None:
    """Every encoder test module runs on one thread (the root conftest's ``one_thread``)."""
