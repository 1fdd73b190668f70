"""Plain text files: UTF-8, or Latin-1 when they are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import Example, TextReader
from fusiondx.errors import DataError
from fusiondx.registry import register_reader


@register_reader("txt", kind="text", suffixes=(".txt",))
class TxtReader(TextReader):
    """A ``.txt`` report: UTF-8 (a byte-order mark dropped), else Latin-1, which decodes any byte."""

    # Any bytes are Latin-1 text, and a cut file is a shorter text: neither can be told.
    detects_truncation = False
    detects_garbage = False

    def read(self, path: Path) -> str:
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

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        text = f"Befund: unauffällig. Herzgröße normal ({int(rng.integers(1, 99))} mm)."
        path = folder / "report.txt"
        path.write_text(text, encoding="utf-8")
        return Example(path, text)
