"""What every reader is: the base classes per kind, the records they return, and the example
file each writes for the common test suite (tests/common/test_readers.py).

A reader decodes one file (or one folder, for a DICOM series) into an array plus the metadata
preprocessing needs, and nothing more: windowing, resizing, resampling, cropping and
normalisation live in :mod:`fusiondx.data.preprocessors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Example",
    "ImageReader",
    "ImageRecord",
    "Reader",
    "SignalReader",
    "SignalRecord",
    "TextReader",
]


@dataclass
class ImageRecord:
    """One image as read from disk, before any preprocessing.

    Attributes:
        array: float32, ``(C, H, W)`` for 2D or ``(C, D, H, W)`` for 3D, in the file's physical
            units where it has them (DICOM after rescale slope/intercept, NIfTI after scl_slope).
        spatial_dims: 2 or 3.
        meta: what the file says about itself, e.g. ``window_center``/``window_width``
            (DICOM), ``photometric`` (DICOM), ``inverted`` (MONOCHROME1), ``format``.
        path: the file (or DICOM series folder) the image came from, named in later errors.
    """

    array: np.ndarray
    spatial_dims: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@dataclass
class SignalRecord:
    """One multi-lead signal as read from disk.

    Attributes:
        array: float32 ``(leads, samples)`` in physical units; NaN marks missing samples.
        rate: sampling rate in Hz, or ``None`` when the file does not say and none was given.
        lead_names: one name per lead (for ``.npy`` files, ``"0"``, ``"1"``, ...).
        path: the file the signal came from, used to name it in later errors.
    """

    array: np.ndarray
    rate: float | None
    lead_names: list[str] = field(default_factory=list)
    path: Path | None = None


@dataclass
class Example:
    """A small file a reader wrote with :meth:`Reader.write_example`, and what reading it gives.

    Attributes:
        path: what a manifest cell would name (a file, a WFDB record, a DICOM series folder).
        expected: the decoded array (images: ``(C, *spatial)``; signals: ``(leads, samples)``)
            or, for text, the string.
        damage: the file the common suite truncates or overwrites with garbage (default
            ``path``); e.g. a WFDB record's ``.dat`` or one slice of a series.
        atol: tolerance of the comparison (lossy formats).
        rate: the sampling rate the file itself carries (signals), or None.
        lead_names: the lead names the file carries (signals), or None.
    """

    path: Path
    expected: np.ndarray | str
    damage: Path | None = None
    atol: float = 0.0
    rate: float | None = None
    lead_names: list[str] | None = None


class Reader:
    """One file format. Subclasses register with
    ``@register_reader(name, kind=..., suffixes=(...), claims=predicate)``: ``suffixes`` are
    matched case-insensitively against the file name (longest first); ``claims(path) -> bool``
    lets a reader take paths that no suffix tells, e.g. a folder or a WFDB record name, and is
    asked before any suffix is looked at; ``hint`` is one phrase for the 'unsupported file type'
    message, and ``companions`` one for 'file not found'.
    """

    #: False for formats with no structure to check (plain text, CSV rows): a file cut short
    #: is still a valid, shorter file, so truncation cannot be told.
    detects_truncation: ClassVar[bool] = True
    #: False where any bytes decode (plain text falls back to Latin-1).
    detects_garbage: ClassVar[bool] = True

    def files(self, path: Path) -> list[Path]:
        """Every file reading ``path`` opens: the file itself, a WFDB record's header and data
        files, a series' slices (the disk cache keys on them; each must lie under the data
        root)."""
        return [path]

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        """Write a small valid file of this format under ``folder`` for the common test suite."""
        raise NotImplementedError(
            f"reader {getattr(cls, 'registered_name', cls.__name__)} has no write_example"
        )


class ImageReader(Reader):
    """Decodes an image file into an :class:`ImageRecord` (float32, channels first)."""

    def read(self, path: Path) -> ImageRecord:
        raise NotImplementedError


class SignalReader(Reader):
    """Decodes a signal file into a :class:`SignalRecord` (float32 ``(leads, samples)``)."""

    def read(
        self,
        path: Path,
        *,
        source_rate: float | None = None,
        root: Path | None = None,
        lead_names: list[str] | None = None,
    ) -> SignalRecord:
        """Args:
        path: the file or record.
        source_rate: the rate of files that carry none (CSV, ``.npy``); ignored by formats
            whose header states it.
        root: the data root every further file the record names must stay under.
        lead_names: the leads the config selects; a reader may use it to read only those
            (EDF channels of another sampling rate), never to reorder or rename.
        """
        raise NotImplementedError

    def count_leads(self, path: Path, *, source_rate: float | None = None) -> int:
        """The number of leads, from the header alone where the format allows."""
        return int(self.read(path, source_rate=source_rate).array.shape[0])


class TextReader(Reader):
    """Decodes a text file into a string (cleaning is the text preprocessor's job)."""

    def read(self, path: Path) -> str:
        raise NotImplementedError
