"""The disk cache in shards: rows across shard boundaries, the same arrays as in memory, and
no half-written shard ever read."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fusiondx
from fusiondx.data.shards import ShardedArray, bounds, cases_per_shard
from fusiondx.data.store import prepare


def _sharded(tmp_path: Path, a: np.ndarray, per: int) -> ShardedArray:
    files = []
    for s, (lo, hi) in enumerate(bounds(len(a), per)):
        f = tmp_path / f"x.{s:05d}.npy"
        np.save(f, a[lo:hi])
        files.append(f)
    return ShardedArray(files, per)


@pytest.mark.parametrize("width", [3, 100])  # rows read through a map / by pread
def test_rows_are_read_across_shard_boundaries(tmp_path: Path, width: int) -> None:
    a = np.arange(20 * width, dtype=np.float32).reshape(20, width)
    s = _sharded(tmp_path, a, 7)  # shards of 7, 7 and 6 rows
    assert len(s.files) == 3 and s.shape == a.shape and s.dtype == a.dtype and len(s) == 20
    idx = np.array([19, 6, 7, 0, 13, 14, 6, -1])
    assert np.array_equal(s[idx], a[idx])
    assert np.array_equal(s[5:16:2], a[5:16:2])
    assert np.array_equal(s[13], a[13]) and np.array_equal(s[idx, 1], a[idx, 1])
    assert np.array_equal(np.asarray(s), a)
    s.close()  # files closed are opened again by the next read
    assert np.array_equal(s[idx], a[idx])
    assert np.array_equal(s[np.array([], dtype=np.int64)], a[:0])
    copy = pickle.loads(pickle.dumps(s))  # as a DataLoader worker started by spawn gets it
    assert np.array_equal(copy[idx], a[idx])
    with pytest.raises(IndexError):
        s[np.array([20])]


def test_shard_size_counts_every_array_of_a_modality() -> None:
    shapes = {
        "a": ((3,), np.dtype(np.float32)),  # 12 bytes
        "b": ((1,), np.dtype(np.int64)),  # 8 bytes
    }
    assert cases_per_shard(shapes, 1) == 2**20 // 20
    assert cases_per_shard(shapes, 1e-9) == 1  # never an empty shard
    assert bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]


def _disk(cfg: dict[str, Any], tmp_path: Path, shard_mb: float) -> dict[str, Any]:
    cfg["data"].update(cache="disk", cache_dir=str(tmp_path / "cache"), cache_shard_mb=shard_mb)
    return cfg


def test_shards_smaller_than_the_cohort_give_the_arrays_of_memory(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    memory = prepare(fusiondx.load_config(quick_config)).store
    # 1 KB shards: every modality (tabular: 26 cases, report: 4, images and ECGs: 1) in many
    sharded = prepare(fusiondx.load_config(_disk(quick_config, tmp_path, 0.001))).store
    for m in memory.modalities:
        for k, a in memory.inputs[m].items():
            b = sharded.inputs[m][k]
            assert isinstance(b, ShardedArray) and len(b.files) > 1, (m, k)
            assert np.array_equal(a, np.asarray(b)), (m, k)
    assert np.array_equal(memory.mask, sharded.mask)
    assert memory.notes == sharded.notes
    idx = np.random.default_rng(0).permutation(len(memory))[:50]
    x, y = memory.batch(idx), sharded.batch(idx)
    for m in memory.modalities:
        xa, ya = x["inputs"][m], y["inputs"][m]
        for k in xa if isinstance(xa, dict) else [None]:
            u, v = (xa[k], ya[k]) if k is not None else (xa, ya)
            assert np.array_equal(u.numpy(), v.numpy()), m


def test_a_half_written_shard_is_never_read(
    quick_config: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    from fusiondx.data.preprocessors import base

    cfg = _disk(quick_config, tmp_path, 0.01)
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] == "ecg"]
    load = base.FilePreprocessor.load_case
    calls = [0]

    def dies_midway(self: Any, path: Path, case_id: str) -> np.ndarray:
        calls[0] += 1
        if calls[0] == 40:  # a few shards are written, one is half-written
            raise KeyboardInterrupt
        return load(self, path, case_id)

    monkeypatch.setattr(base.FilePreprocessor, "load_case", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        prepare(fusiondx.load_config(cfg))
    cache = tmp_path / "cache"
    assert not list(cache.rglob("done")) and not list(cache.rglob("*.tmp.npy"))
    # A crash that left a shard file behind without its folder's "done" is decoded again.
    (folder,) = cache.iterdir()
    np.save(folder / "x.00000.npy", np.full((1, 3, 500), 7.0, dtype=np.float32))
    monkeypatch.setattr(base.FilePreprocessor, "load_case", load)
    again = prepare(fusiondx.load_config(cfg)).store
    cfg["data"]["cache"] = "memory"
    memory = prepare(fusiondx.load_config(cfg)).store
    assert np.array_equal(np.asarray(again.inputs["ecg"][""]), memory.inputs["ecg"][""])
    assert (folder / "done").exists()
