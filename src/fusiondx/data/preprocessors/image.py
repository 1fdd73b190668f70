"""Images (PNG/JPEG, DICOM, NIfTI, NPY; 2D or 3D) -> (C, *size) float arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.readers.image import preprocess_image, read_image
from fusiondx.types import ModalitySpec


class ImagePreprocessor(FilePreprocessor):
    """Decodes, windows, resizes and normalises each image; augmentation happens per batch later."""

    kind = "image"

    def spec(self) -> ModalitySpec:
        p = self.cfg.preprocessing
        return ModalitySpec(self.name, "image", in_channels=p.channels, spatial_dims=len(p.size),
                            image_size=tuple(p.size))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        p = self.cfg.preprocessing
        return {"": ((p.channels, *p.size), np.dtype(np.float32))}

    def load_file(self, path: Path) -> np.ndarray:
        p = self.cfg.preprocessing
        window = tuple(p.window) if isinstance(p.window, (list, tuple)) else p.window
        return preprocess_image(read_image(path), size=p.size, channels=p.channels,
                                normalize=p.normalize, window=window)
