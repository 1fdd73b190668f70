"""Image readers, one per format (PNG/JPEG/BMP/TIFF, DICOM, DICOM series, NIfTI, ``.npy``).

:func:`read_image` picks the reader from the registry and returns an :class:`ImageRecord`
holding a channels-first float32 array in the file's physical units. Axis conventions:

- 2D images: ``(C, H, W)``; row 0 is the top of the picture as stored in the file.
- 3D volumes: ``(C, D, H, W)``.
- DICOM multi-frame: frames become ``D`` in file order; rows/columns become ``H``/``W``.
- DICOM series (a folder of one file per slice): slices sorted along the slice normal become ``D``.
- NIfTI: reoriented to the closest canonical RAS+ orientation (flips and axis swaps only), then
  voxel axes ``(x, y, z)`` map to ``(W, H, D)``; a 4th axis becomes channels.
- ``.npy``: a 2D array is ``(H, W)``, a 3D array is ``(D, H, W)``; both get one channel.

Every problem caused by the file itself raises :class:`fusiondx.errors.DataError` naming the
file and saying how to fix it; the underlying library's message is kept inside the sentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import ImageRecord
from fusiondx.data.readers._lookup import confine_files, find_reader
from fusiondx.errors import DataError

__all__ = ["ImageRecord", "image_files", "read_image"]


def read_image(path: Path, *, root: Path | None = None) -> ImageRecord:
    """Read one image file (or DICOM series folder) into an :class:`ImageRecord`.

    Args:
        path: the image file, or a folder holding one DICOM file per slice.
        root: the data root; when given, every file the image pulls in (each slice of a series)
            must lie under it once symlinks are resolved.

    Raises:
        DataError: the file is missing, has an unsupported suffix, cannot be decoded, has no
            pixel data, has an unsupported shape, or contains NaN/inf values.
    """
    path = Path(path)
    reader = find_reader(path, "image")
    confine_files(reader, path, root)
    rec: ImageRecord = reader.read(path)
    rec.path = path
    finite = np.isfinite(rec.array)
    if not finite.all():
        raise DataError(
            f"the image has {int(rec.array.size - finite.sum())} NaN or infinite pixel value(s)",
            fix="replace or mask the invalid pixels in the file, or remove the case from the "
            "manifest",
            file=path,
        )
    return rec


def image_files(path: Path) -> list[Path]:
    """Every file reading ``path`` opens (a DICOM series: each slice); ``[path]`` when no reader
    takes it (reading reports why)."""
    try:
        return list(find_reader(Path(path), "image").files(Path(path)))
    except DataError:
        return [Path(path)]
