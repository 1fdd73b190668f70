"""Clinical text: inline in the manifest, or a file a reader of kind ``text`` takes (``.txt``)."""

from __future__ import annotations

from pathlib import Path

from fusiondx.data.readers._lookup import find_reader, match_suffix, suffixes
from fusiondx.errors import DataError

__all__ = ["is_text_path", "read_text"]


def is_text_path(value: str) -> bool:
    """True when a manifest cell names a text file: one line ending in a text reader's suffix."""
    candidate = value.strip()
    return "\n" not in candidate and match_suffix(candidate, "text") is not None


def read_text(value: str, *, root: Path | None) -> str:
    """Return the text a manifest cell stands for.

    A value that ends in ``.txt`` (any case) and has no line break is a path to a text file,
    resolved against ``root`` when relative; the file is read as UTF-8 (a byte-order mark is
    dropped) and, if that fails, as Latin-1, which can decode any byte. Anything else is the
    text itself.

    Args:
        value: the manifest cell.
        root: folder that relative paths are resolved against (``None``: the working folder).

    Returns:
        The raw text, not yet cleaned (the text preprocessor cleans it).

    Raises:
        DataError: the value names a text file that is missing or unreadable.
    """
    if not is_text_path(value):
        return value
    path = Path(value.strip()).expanduser()
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    if not path.is_file():
        shown = ", ".join(f"'{s}'" for s in suffixes("text"))
        raise DataError(
            "text file not found" if not path.exists() else "the text path is not a file",
            fix="check the path in the manifest and the data root it is resolved against "
            f"(cells ending in {shown} are read as file paths)",
            file=path,
        )
    text: str = find_reader(path, "text").read(path)
    return text
