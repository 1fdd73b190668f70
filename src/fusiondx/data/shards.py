"""One decoded array of the disk cache, stored as fixed-size shard files and read row by row.

A cohort larger than memory cannot be one array in memory, and one memory-mapped file per
modality does not help either: every page an epoch touches stays mapped into the process and
counts in its resident memory until the kernel is short of memory, so the process grows to the
size of the cache. :class:`ShardedArray` reads each row of a batch with one ``pread`` from the
shard file that holds it, straight into the batch's array (rows of a few numbers, which a map
serves faster and whose whole array is small, through a map): nothing large is mapped, the
process's resident memory stays flat however many cases there are, and a re-read row still
comes from the kernel's page cache, not from the disk. (Handing mapped pages back with ``madvise`` keeps
memory flat too, but re-faulting them cost 10x more time per row on a 2 GB cache.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Rows up to this many bytes are read through a memory map of their shard: one system call per
# row would cost more than the row, and every page of such an array mapped at once is small (a
# million cases of 9 tabular numbers: 36 MB).
_MAPPED_ROW_BYTES = 256


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
        rows, self._offsets = 0, []
        for f in self.files:
            m = np.load(f, mmap_mode="r")  # only to read the header: dropped at once
            self.dtype, tail = m.dtype, m.shape[1:]
            rows += m.shape[0]
            self._offsets.append(int(m.offset))
            del m
        self.shape: tuple[int, ...] = (rows, *tail)
        self._row_bytes = int(np.prod(tail, dtype=np.int64)) * self.dtype.itemsize
        self._fds: list[int | None] = [None] * len(self.files)
        self._maps: list[np.memmap | None] = [None] * len(self.files)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self) * self._row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            rows, rest = self[index[0]], tuple(index[1:])
            # One row has lost the case axis; several keep it first.
            return rows[rest] if np.isscalar(index[0]) else rows[(slice(None),) + rest]
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        if np.isscalar(index):
            return self.take(np.asarray([index]))[0]
        return self.take(np.asarray(index))

    def _fd(self, shard: int) -> int:
        fd = self._fds[shard]
        if fd is None:
            fd = self._fds[shard] = os.open(self.files[shard], os.O_RDONLY)
        return fd

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (ints, any order, negatives from the end) as one new array."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        size = self._row_bytes
        if size == 0:
            return out
        shard, local = np.divmod(rows, self.per_shard)
        if size <= _MAPPED_ROW_BYTES:
            for s in np.unique(shard).tolist():
                at = np.flatnonzero(shard == s)
                m = self._maps[s]
                if m is None:
                    m = self._maps[s] = np.load(self.files[s], mmap_mode="r")
                out[at] = m[local[at]]
            return out
        buf = out.reshape(-1).view(np.uint8).data  # a view: preadv fills ``out``
        for j, (s, r) in enumerate(zip(shard.tolist(), local.tolist(), strict=True)):
            got = os.preadv(
                self._fd(s), [buf[j * size : (j + 1) * size]], self._offsets[s] + r * size
            )
            if got != size:
                raise OSError(f"{self.files[s]}: row {r} is cut short (the cache file was changed)")
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([np.load(f) for f in self.files], axis=0)
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def close(self) -> None:
        """Close the shard files (reopened on the next read)."""
        self._maps = [None] * len(self.files)
        for i, fd in enumerate(self._fds):
            if fd is not None:
                os.close(fd)
                self._fds[i] = None

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # File descriptors are not sent to other processes (spawned workers): each opens its own.
        return {
            **self.__dict__,
            "_fds": [None] * len(self.files),
            "_maps": [None] * len(self.files),
        }

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, shards={len(self.files)})"
