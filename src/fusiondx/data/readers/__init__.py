"""File readers and per-sample preprocessing for each modality kind.

Readers turn one user file into a record (array + metadata); ``preprocess_*`` functions turn a
record into a fixed-shape float32 array. Every problem caused by a user's file raises
:class:`fusiondx.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

from fusiondx.data.readers.image import (
    IMAGE_SUFFIXES,
    ImageRecord,
    preprocess_image,
    read_image,
)
from fusiondx.data.readers.signal import (
    SIGNAL_SUFFIXES,
    SignalRecord,
    preprocess_signal,
    read_signal,
)
from fusiondx.data.readers.text import clean_text, read_text

__all__ = [
    "IMAGE_SUFFIXES",
    "SIGNAL_SUFFIXES",
    "ImageRecord",
    "SignalRecord",
    "clean_text",
    "preprocess_image",
    "preprocess_signal",
    "read_image",
    "read_signal",
    "read_text",
]
