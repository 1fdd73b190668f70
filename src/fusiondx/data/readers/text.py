"""Read clinical text (inline in the manifest or from ``.txt`` files) and clean it."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from fusiondx.errors import DataError

__all__ = ["clean_text", "read_text"]

_WHITESPACE = re.compile(r"\s+")


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
        The raw text, not yet cleaned (see :func:`clean_text`).

    Raises:
        DataError: the value names a ``.txt`` file that is missing or unreadable.
    """
    candidate = value.strip()
    if not (candidate.lower().endswith(".txt") and "\n" not in candidate):
        return value
    path = Path(candidate).expanduser()
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    if not path.is_file():
        raise DataError(
            "text file not found" if not path.exists() else "the text path is not a file",
            fix="check the path in the manifest and the data root it is resolved against "
            "(cells ending in '.txt' are read as file paths)",
            file=path,
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"the text file cannot be read ({exc})",
            fix="check the file's permissions",
            file=path,
        ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older hospital exports are often Latin-1/Windows-1252; Latin-1 never fails.
        return raw.decode("latin-1")


def clean_text(text: str, *, lowercase: bool = True) -> str:
    """Normalise text for tokenisation.

    Applies Unicode NFKC normalisation (so e.g. full-width letters and ligatures become plain
    ones), turns whitespace control characters (tabs, line breaks) into spaces, drops other
    control and invisible format characters (e.g. zero-width spaces, byte-order marks),
    collapses runs of whitespace into one space and strips both ends.

    Args:
        text: the raw text.
        lowercase: also lower-case the text.

    Returns:
        The cleaned text.
    """
    text = unicodedata.normalize("NFKC", text)
    chars = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cc":
            # Keep the separation that tabs/newlines provide; drop the rest (NUL, BEL, ...).
            if ch.isspace():
                chars.append(" ")
        elif cat != "Cf":
            chars.append(ch)
    text = _WHITESPACE.sub(" ", "".join(chars)).strip()
    return text.lower() if lowercase else text
