"""One decoded array of the disk cache, stored as fixed-size shard files and read row by row.

A cohort larger than memory cannot be one array in memory, and one memory-mapped file per
modality does not help either: every page an epoch touches stays mapped into the process and
counts in its resident memory until the kernel is short of memory, so the process grows to the
size of the cache. :class:`ShardedArray` reads rows through the memory map of the shard that
holds them and hands the pages it read back to the page cache (``madvise(MADV_DONTNEED)``)
every few dozen MB, so the process's resident memory stays flat however many cases there are;
a re-read page still comes from the kernel's page cache, not from the disk.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Bytes read through the maps between two hand-backs of their pages.
_DROP_EVERY = 32 * 2**20


def shard_name(key: str, shard: int) -> str:
    """File name of one shard of array ``key`` ('' is a modality's single array)."""
    return f"{key or 'x'}.{shard:05d}.npy"


def cases_per_shard(shapes: dict[str, tuple[tuple[int, ...], np.dtype]], shard_mb: float) -> int:
    """How many cases one shard holds: all of a modality's arrays of a shard fit ``shard_mb``."""
    row = sum(
        int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize for shape, dt in shapes.values()
    )
    return max(1, int(shard_mb * 2**20) // max(row, 1))


def bounds(n: int, per_shard: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` rows of each shard of ``n`` cases (one empty shard when n is 0)."""
    return [(a, min(a + per_shard, n)) for a in range(0, max(n, 1), per_shard)] if n else [(0, 0)]


class ShardedArray:
    """A read-only ``(n, ...)`` array over shard files of ``per_shard`` rows each.

    Indexing with an int, a slice or an integer array gives a new in-memory ndarray (rows in
    the order asked); ``np.asarray`` gives the whole array (for the small uses that want it).

    Args:
        files: the shard files in row order, each a ``.npy`` of ``per_shard`` rows (the last
            may hold fewer).
        per_shard: rows per shard.
    """

    def __init__(self, files: Sequence[Path], per_shard: int) -> None:
        self.files = [Path(f) for f in files]
        self.per_shard = int(per_shard)
        self._maps: list[np.memmap | None] = [None] * len(self.files)
        first = self._map(0)
        self.dtype = first.dtype
        rows = sum(self._rows(i) for i in range(len(self.files)))
        self.shape: tuple[int, ...] = (rows, *first.shape[1:])
        self._since_drop = 0

    def _rows(self, i: int) -> int:
        if i < len(self.files) - 1:
            return self.per_shard
        return int(self._map(i).shape[0])

    def _map(self, i: int) -> np.memmap:
        m = self._maps[i]
        if m is None:
            m = self._maps[i] = np.load(self.files[i], mmap_mode="r")
        return m

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            return self[index[0]][(slice(None), *index[1:])]
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        if np.isscalar(index):
            return self.take(np.asarray([index]))[0]
        return self.take(np.asarray(index))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (ints, any order, negatives from the end) as one new array."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        shard = rows // self.per_shard
        for s in np.unique(shard):
            at = np.flatnonzero(shard == s)
            out[at] = self._map(int(s))[rows[at] - int(s) * self.per_shard]
        self._since_drop += out.nbytes
        if self._since_drop >= _DROP_EVERY:
            self.drop_pages()
        return out

    def drop_pages(self) -> None:
        """Unmap the pages read so far from this process (they stay in the page cache)."""
        self._since_drop = 0
        for m in self._maps:
            raw = getattr(m, "_mmap", None)
            if raw is not None and hasattr(mmap, "MADV_DONTNEED"):
                raw.madvise(mmap.MADV_DONTNEED)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([self._map(i) for i in range(len(self.files))], axis=0)
        self.drop_pages()
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getstate__(self) -> dict[str, Any]:
        # Maps are not sent to other processes (DataLoader workers, spawn): each opens its own.
        return {**self.__dict__, "_maps": [None] * len(self.files)}

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, shards={len(self.files)})"
