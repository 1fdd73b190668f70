"""The disk cache of decoded arrays: one folder per modality, keyed by all that shapes its arrays.

``cache_root`` names a modality's folder from the manifest, the data root, the modality's
settings and fitted state, and the identity of every file it reads. ``decode_to_disk`` decodes
the cases shard by shard (``data.cache_shard_mb`` of arrays per shard file, see
:mod:`fusiondx.data.shards`), so that neither decoding nor training ever holds every case in
memory; each shard is written to a file private to this process and renamed into place, and a
folder is read only once its ``done`` marker exists, so concurrent trainings never read a
half-written shard. ``allocate`` gives the in-memory arrays of ``data.cache: memory``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.data.preprocessors import Preprocessor
from fusiondx.data.shards import ShardedArray, bounds, cases_per_shard, shard_name
from fusiondx.errors import DataError

# What a cache folder's layout is recorded in (written before "done").
_INDEX = "shards.json"


def allocate(p: Preprocessor, n: int) -> dict[str, np.ndarray]:
    """In-memory arrays (zeros) to decode ``n`` cases into."""
    return {key: np.zeros((n, *shape), dtype=dtype) for key, (shape, dtype) in p.shapes().items()}


class _Rows:
    """The rows ``[start, start + len)`` of the cohort, written into one shard's array: a
    preprocessor indexes by cohort row (its errors and findings name manifest lines)."""

    def __init__(self, array: np.ndarray, start: int) -> None:
        self.array, self.start = array, start

    def _local(self, index: Any) -> Any:
        if isinstance(index, tuple):
            return (self._local(index[0]), *index[1:])
        return np.asarray(index, dtype=np.int64) - self.start

    def __setitem__(self, index: Any, value: Any) -> None:
        self.array[self._local(index)] = value

    def __getitem__(self, index: Any) -> Any:
        return self.array[self._local(index)]


def decode_to_disk(
    p: Preprocessor,
    df: pd.DataFrame,
    present: np.ndarray,
    ids: pd.Series,
    root: Path,
    *,
    shard_mb: float,
    errors: list[DataError],
    advance: Callable[[int], None],
) -> tuple[dict[str, ShardedArray] | None, dict[str, Any]]:
    """Decode the present cases shard by shard into ``root``; publish them if nothing failed.

    Returns the published arrays (None when decoding appended errors: nothing is published
    and no file is left) and what decoding found (blank cells, warnings).
    """
    shapes = p.shapes()
    per = cases_per_shard(shapes, shard_mb)
    tmp: dict[str, list[Path]] = {k: [] for k in shapes}
    before = len(errors)
    p.reset_found()
    try:
        for s, (a, b) in enumerate(bounds(len(df), per)):
            out: dict[str, Any] = {}
            for key, (shape, dtype) in shapes.items():
                f = root / f"{shard_name(key, s)[:-4]}.{os.getpid()}.tmp.npy"
                tmp[key].append(f)
                out[key] = np.lib.format.open_memmap(
                    f, mode="w+", dtype=dtype, shape=(b - a, *shape)
                )
            rows = np.zeros(len(df), dtype=bool)
            rows[a:b] = present[a:b]
            # _Rows stands in for the cohort-sized arrays the preprocessors write into by cohort row.
            windows = cast(dict[str, np.ndarray], {k: _Rows(v, a) for k, v in out.items()})
            p.transform(df, rows, ids, windows, errors, advance)
            for v in out.values():
                v.flush()
            del out  # unmaps the shard: its pages leave this process
    except BaseException:
        _remove(f for fs in tmp.values() for f in fs)
        raise
    empty, said = p.found()
    found = {"empty": [int(i) for i in empty], "notes": said}
    if len(errors) > before:
        _remove(f for fs in tmp.values() for f in fs)
        return None, found
    return publish(tmp, root, per, found), found


def _remove(files: Iterable[Path]) -> None:
    for f in files:
        f.unlink(missing_ok=True)


def publish(
    tmp: dict[str, list[Path]], root: Path, per_shard: int, found: dict[str, Any]
) -> dict[str, ShardedArray]:
    """Move a finished decode into the shared cache, one rename per shard file, ``done`` last.

    Several trainings of a study may decode the same modality at once; each writes its own
    files and renames them into place, so no process ever reads a file another is writing.
    """
    for key, files in tmp.items():
        for s, f in enumerate(files):
            os.replace(f, root / shard_name(key, s))
    index = {"per_shard": per_shard, "shards": len(next(iter(tmp.values()), [])), "keys": list(tmp)}
    for name, content in ((_INDEX, index), ("found.json", found)):
        f = root / f"{name}.{os.getpid()}.tmp"
        f.write_text(json.dumps(content))
        os.replace(f, root / name)
    (root / "done").write_text("ok")
    return open_cached(root)


def open_cached(root: Path) -> dict[str, ShardedArray]:
    """The arrays of a published cache folder (``done`` exists)."""
    index = json.loads((root / _INDEX).read_text())
    return {
        key: ShardedArray(
            [root / shard_name(key, s) for s in range(index["shards"])], index["per_shard"]
        )
        for key in index["keys"]
    }


# Bytes of a file's start and of its end hashed into the cache key; a file up to twice this is
# hashed whole. Bounded so that keying a large cohort costs a stat and a small read per file.
_HASHED_BYTES = 8192
# Changes with what a cache folder holds (2: found.json, the blank cells and warnings of
# decoding; 3: shard files and their index).
_CACHE_FORMAT = b"fusiondx-cache-3\0"


def cache_root(cfg: Config, name: str, p: Preprocessor, files: Iterable[Path]) -> Path:
    """One folder per modality, keyed by the manifest's bytes, the data root, the modality's
    settings and fitted state, the shard size, and the identity of every file it reads
    (resolved path, size, modification time, and a hash of its start and end: the whole of a
    small file), so that a replaced or damaged file is decoded again while runs on any subset
    of modalities share the decoded arrays."""
    h = hashlib.sha256(_CACHE_FORMAT)
    with cfg.data.manifest.open("rb") as fh:  # in blocks: a large manifest is never held whole
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    h.update(str(cfg.data.data_root).encode())
    h.update(
        json.dumps(
            [cfg.modality(name).model_dump(mode="json"), p.state(), cfg.data.cache_shard_mb],
            sort_keys=True,
            default=str,
        ).encode()
    )
    for f in files:
        h.update(_file_identity(f))
    base = cfg.data.cache_dir or (cfg.output_dir / ".cache")
    root = base / f"{name}-{h.hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _file_identity(path: Path) -> bytes:
    full = path.resolve()
    try:
        st = full.stat()
        with full.open("rb") as fh:
            content = fh.read(2 * _HASHED_BYTES)
            if st.st_size > 2 * _HASHED_BYTES:
                fh.seek(-_HASHED_BYTES, os.SEEK_END)
                content = content[:_HASHED_BYTES] + fh.read()
    except OSError as exc:  # missing or unreadable: decoding says so, and nothing is published
        return f"{full}\0{type(exc).__name__}\n".encode()
    digest = hashlib.blake2b(content, digest_size=16).hexdigest()
    return f"{full}\0{st.st_size}\0{st.st_mtime_ns}\0{digest}\n".encode()
