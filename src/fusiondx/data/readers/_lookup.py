"""Which reader reads this path: one lookup over the reader registry.

A reader's registry entry says its ``kind`` (image, signal, text), its ``suffixes`` and, for
paths no suffix tells, a ``claims(path)`` predicate (a DICOM series folder, a WFDB record named
without suffix, a DICOM file without suffix). Predicates are asked first, then the longest
matching suffix wins (``.nii.gz`` before a ``.gz``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusiondx.data.readers._common import confine
from fusiondx.errors import DataError
from fusiondx.registry import READERS, Entry

__all__ = ["confine_files", "entries_of", "find_reader", "match_suffix", "suffixes"]

_NOT_FOUND_FIX = "check the path in the manifest and the data root it is resolved against"


def entries_of(kind: str) -> list[Entry[Any]]:
    """The registered readers of one kind, by name."""
    return [e for e in READERS.entries() if e.meta.get("kind") == kind]


def suffixes(kind: str) -> tuple[str, ...]:
    """Every suffix the readers of ``kind`` take, in registry order."""
    return tuple(s for e in entries_of(kind) for s in e.meta.get("suffixes", ()))


def match_suffix(name: str, kind: str) -> Entry[Any] | None:
    """The reader whose suffix ends ``name`` (case-insensitive, longest suffix first), if any.
    Looks at the name only, never at the file system."""
    lowered = name.lower()
    best: tuple[int, Entry[Any]] | None = None
    for entry in entries_of(kind):
        for suffix in entry.meta.get("suffixes", ()):
            if lowered.endswith(suffix.lower()) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), entry)
    return best[1] if best else None


def find_reader(path: Path, kind: str) -> Any:
    """A reader instance for ``path``.

    Raises:
        DataError: naming the file: it does not exist, is a folder no reader takes, or has a
            suffix no reader of ``kind`` knows (the message lists the supported ones).
    """
    entries = entries_of(kind)
    for entry in entries:
        claims = entry.meta.get("claims")
        if claims is not None and claims(path):
            return entry.cls()
    if not path.exists():
        companions = [e.meta["companions"] for e in entries if e.meta.get("companions")]
        extra = f" ({'; '.join(companions)})" if companions else ""
        raise DataError("file not found", fix=_NOT_FOUND_FIX + extra, file=path)
    known = ", ".join(suffixes(kind))
    if path.is_dir():
        raise DataError(
            f"the path is a folder, not {'an' if kind[0] in 'aeiou' else 'a'} {kind} file",
            fix=f"point the manifest at one {kind} file ({known})",
            file=path,
        )
    hit = match_suffix(path.name, kind)
    if hit is not None:
        return hit.cls()
    hints = [e.meta["hint"] for e in entries if e.meta.get("hint")]
    raise DataError(
        f"unsupported {kind} file type: {path.suffix.lower() or 'no suffix'}",
        fix=f"use one of {known}" + "".join(f"; {h}" for h in hints) + ", or convert the file",
        file=path,
    )


def confine_files(reader: Any, path: Path, root: Path | None) -> list[Path]:
    """Every file ``reader`` opens for ``path``, each checked to lie under ``root``."""
    files = reader.files(path)
    for f in files:
        if f != path:
            confine(f, root, what=f"file '{f.name}' read for '{path.name}'", file=path)
        else:
            confine(f, root, what=f"path '{path.name}'", file=path)
    return files
