"""Encoder test setup: the shared tiny specs (tests/common/specs.py) importable as ``specs``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_COMMON = str(Path(__file__).resolve().parents[1] / "common")
if _COMMON not in sys.path:
    sys.path.insert(0, _COMMON)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors run faster on one thread, and a shared 2-core machine stays responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
