"""Images (PNG/JPEG, DICOM, NIfTI, NPY; 2D or 3D) -> (C, *size) float arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.data.manifest import some_cases
from fusiondx.data.preprocessors.base import Arrays, FilePreprocessor
from fusiondx.data.readers.image import ImageRecord, preprocess_image, read_image
from fusiondx.errors import DataError
from fusiondx.types import ModalitySpec

# An image blown up more than this in an axis is mostly interpolation (an icon, a thumbnail,
# a wrong file); it is decoded as asked, and said.
UPSCALE_WARN = 4.0


class ImagePreprocessor(FilePreprocessor):
    """Decodes, windows, resizes and normalises each image; augmentation happens per batch later."""

    kind = "image"

    def __init__(self, cfg: object, root: Path) -> None:
        super().__init__(cfg, root)
        self.upscaled: list[tuple[str, tuple[int, ...]]] = []  # (case id, spatial shape in the file)

    def spec(self) -> ModalitySpec:
        p = self.cfg.preprocessing
        return ModalitySpec(self.name, "image", in_channels=p.channels, spatial_dims=len(p.size),
                            image_size=tuple(p.size))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        p = self.cfg.preprocessing
        return {"": ((p.channels, *p.size), np.dtype(np.float32))}

    def transform(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series, out: Arrays,
                  errors: list[DataError], advance: Callable[[int], None]) -> None:
        self.upscaled = []
        super().transform(df, present, ids, out, errors, advance)

    def load_case(self, path: Path, case_id: str) -> np.ndarray:
        rec = read_image(path)
        shape = tuple(int(s) for s in rec.array.shape[1:])
        size = self.cfg.preprocessing.size
        if len(shape) == len(size) and any(t > UPSCALE_WARN * s for t, s in zip(size, shape, strict=True)):
            self.upscaled.append((case_id, shape))
        return self._preprocess(rec)

    def load_file(self, path: Path) -> np.ndarray:
        return self._preprocess(read_image(path))

    def _preprocess(self, rec: ImageRecord) -> np.ndarray:
        p = self.cfg.preprocessing
        window = tuple(p.window) if isinstance(p.window, (list, tuple)) else p.window
        return preprocess_image(rec, size=p.size, channels=p.channels, normalize=p.normalize, window=window)

    def found(self) -> tuple[list[int], list[str]]:
        if not self.upscaled:
            return [], []
        size = "x".join(map(str, self.cfg.preprocessing.size))
        shown = some_cases([f"{c} {'x'.join(map(str, s))}" for c, s in self.upscaled])
        return [], [f"modality '{self.name}': {len(self.upscaled)} image(s) are upscaled more than "
                    f"{UPSCALE_WARN:g}x in an axis to the model size {size} (e.g. {shown}); so small an "
                    "image holds little detail (an icon, a thumbnail, a wrong file?): check them, or "
                    f"lower modalities[{self.name}].preprocessing.size"]
