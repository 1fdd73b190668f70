"""Greyscale images and volumes saved with ``numpy.save``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import Example, ImageReader, ImageRecord
from fusiondx.data.readers._common import load_numeric_npy
from fusiondx.errors import DataError
from fusiondx.registry import register_reader


@register_reader("npy_image", kind="image", suffixes=(".npy",))
class NpyImageReader(ImageReader):
    """A 2D ``(H, W)`` image or 3D ``(D, H, W)`` volume, one channel; never unpickles anything."""

    def read(self, path: Path) -> ImageRecord:
        data = load_numeric_npy(path, what="image", fix_shape="(e.g. float32 or uint16)")
        meta = {"format": "npy"}
        if data.ndim in (2, 3):
            return ImageRecord(
                array=data.astype(np.float32)[None], spatial_dims=data.ndim, meta=meta
            )
        raise DataError(
            f"the .npy image has shape {data.shape}; expected a 2D (H, W) image or a 3D (D, H, W) "
            "volume",
            fix="save one greyscale image or volume per file (colour .npy images are not "
            "supported; save them as PNG)",
            file=path,
        )

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        data = rng.integers(-1000, 3000, (3, 6, 5)).astype(np.int16)
        path = folder / "volume.npy"
        np.save(path, data, allow_pickle=False)
        return Example(path, data.astype(np.float32)[None])
