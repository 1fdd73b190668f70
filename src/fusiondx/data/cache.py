"""The disk cache of decoded arrays: one folder per modality, keyed by all that shapes its arrays.

``cache_root`` names a modality's folder from the manifest, the data root, the modality's
settings and fitted state, and the identity of every file it reads; ``allocate`` gives the
arrays to decode into (in memory, or memory-mapped files private to this process); ``publish``
renames a finished decode into place, so concurrent trainings never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.config import Config
from fusiondx.data.preprocessors import Preprocessor


def allocate(p: Preprocessor, n: int, root: Path | None) -> dict[str, np.ndarray]:
    """Arrays to decode into: in memory, or memory-mapped files private to this process."""
    out: dict[str, np.ndarray] = {}
    for key, (shape, dtype) in p.shapes().items():
        if root is None:
            out[key] = np.zeros((n, *shape), dtype=dtype)
        else:
            f = root / f"{key or 'x'}.{os.getpid()}.tmp.npy"
            out[key] = np.lib.format.open_memmap(f, mode="w+", dtype=dtype, shape=(n, *shape))
    return out


def publish(
    arrays: dict[str, np.ndarray], root: Path, found: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Move a finished decode into the shared cache in one rename per file.

    Several trainings of a study may decode the same modality at once; each writes its own
    files and renames them into place, so no process ever reads a file another is writing.
    """
    out = {}
    for key, a in arrays.items():
        a.flush()  # type: ignore[attr-defined]
        final = root / f"{key or 'x'}.npy"
        os.replace(a.filename, final)  # type: ignore[attr-defined]
        out[key] = np.load(final, mmap_mode="r")
    found_file = root / f"found.{os.getpid()}.tmp.json"
    found_file.write_text(json.dumps(found))
    os.replace(found_file, root / "found.json")
    (root / "done").write_text("ok")
    return out


# Bytes of a file's start and of its end hashed into the cache key; a file up to twice this is
# hashed whole. Bounded so that keying a large cohort costs a stat and a small read per file.
_HASHED_BYTES = 8192
# Changes with what a cache folder holds (2: found.json, the blank cells and warnings of decoding).
_CACHE_FORMAT = b"fusiondx-cache-2\0"


def cache_root(cfg: Config, name: str, p: Preprocessor, files: Sequence[Path]) -> Path:
    """One folder per modality, keyed by the manifest's bytes, the data root, the modality's
    settings and fitted state, and the identity of every file it reads (resolved path, size,
    modification time, and a hash of its start and end: the whole of a small file), so that a
    replaced or damaged file is decoded again while runs on any subset of modalities share the
    decoded arrays."""
    h = hashlib.sha256(_CACHE_FORMAT + cfg.data.manifest.read_bytes())
    h.update(str(cfg.data.data_root).encode())
    h.update(
        json.dumps(
            [cfg.modality(name).model_dump(mode="json"), p.state()], sort_keys=True, default=str
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
