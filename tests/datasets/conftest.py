"""Fixtures: tiny official layouts of the public datasets (see public_layouts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datasets.public_layouts import write_mimic, write_nih, write_pneumonia, write_ptbxl


@pytest.fixture(scope="session")
def ptbxl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"))


@pytest.fixture(scope="session")
def nih_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nih(tmp_path_factory.mktemp("nih"))


@pytest.fixture(scope="session")
def mimic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mimic(tmp_path_factory.mktemp("mimic"))


@pytest.fixture
def pneumonia_npz(tmp_path: Path) -> Path:
    return write_pneumonia(tmp_path / "src")
