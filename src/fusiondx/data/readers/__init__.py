"""File readers, one per format, found through the reader registry.

Each reader decodes one file (or a DICOM series folder) into an array plus the metadata
preprocessing needs: :func:`read_image` -> :class:`ImageRecord`, :func:`read_signal` ->
:class:`SignalRecord`, :func:`read_text` -> the raw text. Windowing, resizing, resampling,
cropping and normalisation are the preprocessors' (:mod:`fusiondx.data.preprocessors`). Every
problem caused by a user's file raises :class:`fusiondx.errors.DataError` naming the file and
the fix.

A new format is one new module under ``image/``, ``signal/`` or ``text/`` holding a class
decorated with ``@register_reader(name, kind=..., suffixes=(...))``; importing this package
imports every public module, and the common suite (tests/common/test_readers.py) covers it.
"""

from __future__ import annotations

from fusiondx.data.readers._base import (
    Example,
    ImageReader,
    ImageRecord,
    Reader,
    SignalReader,
    SignalRecord,
    TextReader,
)
from fusiondx.data.readers._lookup import find_reader, match_suffix, suffixes
from fusiondx.data.readers.image import image_files, read_image
from fusiondx.data.readers.signal import lead_count, read_signal, record_files
from fusiondx.data.readers.text import is_text_path, read_text
from fusiondx.registry import import_modules

import_modules(__name__, __path__)

__all__ = [
    "Example",
    "ImageReader",
    "ImageRecord",
    "Reader",
    "SignalReader",
    "SignalRecord",
    "TextReader",
    "find_reader",
    "image_files",
    "is_text_path",
    "lead_count",
    "match_suffix",
    "read_image",
    "read_signal",
    "read_text",
    "record_files",
    "suffixes",
]
