"""The contract every registered reader keeps; a new reader is tested the moment it registers.

Each reader writes its own small example file (``write_example``; a reader without one fails
here), reads it back through the public lookup, and must turn a truncated or garbage file into a
DataError naming the file, never a traceback.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fusiondx.data.readers as readers_pkg
from fusiondx.data.readers import (
    Example,
    ImageReader,
    SignalReader,
    TextReader,
    find_reader,
    match_suffix,
    read_image,
    read_signal,
    read_text,
    suffixes,
)
from fusiondx.errors import DataError
from fusiondx.registry import READERS

NAMES = READERS.names()
BASES = {"image": ImageReader, "signal": SignalReader, "text": TextReader}
GARBAGE = b"this is not a real file \x00\xff\xfe\x01" * 8


def _read(kind: str, path: Path) -> Any:
    if kind == "image":
        return read_image(path)
    if kind == "signal":
        return read_signal(path)
    return read_text(str(path), root=None)


def _example(name: str, tmp_path: Path, seed: int = 0) -> tuple[Any, Example]:
    entry = READERS.get(name)
    ex = entry.cls.write_example(tmp_path, np.random.default_rng(seed))
    assert isinstance(ex, Example), f"{name}.write_example must return an Example"
    return entry, ex


def _assert_names_file(err: DataError, path: Path) -> None:
    msg = str(err)
    assert str(path) in msg, msg
    assert "Fix:" in msg, msg


@pytest.mark.parametrize("name", NAMES)
def test_entry_declares_kind_base_and_docstring(name: str) -> None:
    entry = READERS.get(name)
    kind = entry.meta.get("kind")
    assert kind in BASES, f"{name}: kind must be one of {sorted(BASES)}, got {kind!r}"
    assert issubclass(entry.cls, BASES[kind]), f"{name} must subclass {BASES[kind].__name__}"
    assert entry.summary, f"{name} needs a docstring (its first line is the catalog entry)"
    sfx = entry.meta.get("suffixes", ())
    assert sfx or entry.meta.get("claims"), f"{name} needs suffixes or a claims predicate"
    assert all(s.startswith(".") and s == s.lower() for s in sfx), sfx


@pytest.mark.parametrize("name", NAMES)
def test_example_reads_back(name: str, tmp_path: Path) -> None:
    entry, ex = _example(name, tmp_path)
    kind = entry.meta["kind"]
    assert isinstance(find_reader(ex.path, kind), entry.cls), "the lookup picks another reader"
    got = _read(kind, ex.path)
    if kind == "text":
        assert got == ex.expected
        return
    expected = np.asarray(ex.expected)
    assert got.array.dtype == np.float32
    assert got.array.shape == expected.shape
    np.testing.assert_allclose(got.array, expected, atol=ex.atol, rtol=0)
    assert got.path == ex.path
    if kind == "image":
        assert got.spatial_dims == expected.ndim - 1
    else:
        assert got.rate == ex.rate
        if ex.lead_names is not None:
            assert got.lead_names == ex.lead_names


@pytest.mark.parametrize("name", NAMES)
def test_files_cover_what_is_read(name: str, tmp_path: Path) -> None:
    """The disk cache keys on files(): the file a damage changes must be among them."""
    entry, ex = _example(name, tmp_path)
    files = find_reader(ex.path, entry.meta["kind"]).files(ex.path)
    assert files and all(f.is_file() for f in files), files
    assert (ex.damage or ex.path) in files


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("name", NAMES)
def test_damaged_file_is_a_data_error(name: str, how: str, tmp_path: Path) -> None:
    entry, ex = _example(name, tmp_path)
    target = ex.damage or ex.path
    data = target.read_bytes()
    target.write_bytes({"truncated": data[: len(data) // 2], "garbage": GARBAGE, "empty": b""}[how])
    detects = entry.cls.detects_truncation if how == "truncated" else entry.cls.detects_garbage
    try:
        _read(entry.meta["kind"], ex.path)
    except DataError as err:
        # The file itself, or the record the manifest names and the damaged file by name (a
        # WFDB record is reported at its header, naming the data file).
        named = target if str(target) in str(err) else ex.path
        _assert_names_file(err, named)
        assert target.name in str(err), str(err)
        return
    assert not detects, f"{name} read a {how} file without complaint"


@pytest.mark.parametrize("name", NAMES)
def test_suffixes_match_this_reader_only(name: str) -> None:
    entry = READERS.get(name)
    kind = entry.meta["kind"]
    for s in entry.meta.get("suffixes", ()):
        for file_name in (f"case_001{s}", f"CASE.v2{s.upper()}"):
            hit = match_suffix(file_name, kind)
            assert hit is not None and hit.name == name, (file_name, hit)
        assert s in suffixes(kind)


@pytest.mark.parametrize("kind", sorted(BASES))
def test_no_suffix_is_taken_twice_and_unknown_ones_are_listed(kind: str, tmp_path: Path) -> None:
    taken = suffixes(kind)
    assert len(taken) == len(set(taken)), taken
    other = tmp_path / "file.xyz"
    other.write_bytes(b"data")
    if kind == "text":
        assert read_text(str(other), root=None) == str(other)  # not a text path: the text itself
        return
    with pytest.raises(DataError) as ei:
        _read(kind, other)
    _assert_names_file(ei.value, other)
    assert all(s in str(ei.value) for s in taken), str(ei.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    for kind, name in (("image", "gone.png"), ("signal", "gone.edf"), ("text", "gone.txt")):
        with pytest.raises(DataError) as ei:
            _read(kind, tmp_path / name)
        _assert_names_file(ei.value, tmp_path / name)
        assert "not found" in str(ei.value)


def test_every_reader_module_registers_a_reader() -> None:
    modules = {
        m.name
        for m in pkgutil.walk_packages(readers_pkg.__path__, readers_pkg.__name__ + ".")
        if not m.ispkg and not any(p.startswith("_") for p in m.name.split(".")[3:])
    }
    registering = {e.cls.__module__ for e in READERS.entries()}
    assert modules, "no reader modules found"
    assert modules == registering, f"modules registering no reader: {sorted(modules - registering)}"
