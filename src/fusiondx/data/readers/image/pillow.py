"""PNG, JPEG, BMP and TIFF through Pillow; a multi-page TIFF is a 3D volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._base import Example, ImageReader, ImageRecord
from fusiondx.data.readers._common import one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader


@register_reader(
    "pillow", kind="image", suffixes=(".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
)
class PillowReader(ImageReader):
    """Ordinary pictures: grey or RGB (alpha dropped, palettes expanded), 16-bit grey kept whole."""

    def read(self, path: Path) -> ImageRecord:
        from PIL import Image

        try:
            with Image.open(path) as img:
                # load() forces decoding now: Image.open only reads the header, so a truncated
                # file would otherwise fail later, far from here.
                img.load()
                frames = [_frame_to_array(img)]
                # Multi-page TIFFs are stacks of slices: read them all as a 3D volume.
                for i in range(1, int(getattr(img, "n_frames", 1))):
                    img.seek(i)
                    img.load()
                    frames.append(_frame_to_array(img))
                mode = img.mode
        except (
            Exception
        ) as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... for bad files
            raise DataError(
                f"the image file cannot be decoded (Pillow: {one_line(exc)})",
                fix="check that the file is a complete, valid image (re-export or re-download it)",
                file=path,
            ) from exc

        meta: dict[str, Any] = {"format": "pillow", "mode": mode}
        if len(frames) == 1:
            return ImageRecord(array=frames[0], spatial_dims=2, meta=meta)
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise DataError(
                f"the multi-page TIFF has pages of different sizes or channels ({sorted(shapes)})",
                fix="save each page as its own file, or make all pages the same size and mode",
                file=path,
            )
        meta["n_frames"] = len(frames)
        volume = np.stack(frames, axis=0).transpose(1, 0, 2, 3)  # (D, C, H, W) -> (C, D, H, W)
        return ImageRecord(array=np.ascontiguousarray(volume), spatial_dims=3, meta=meta)

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        from PIL import Image

        pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
        path = folder / "photo.png"
        Image.fromarray(pixels, mode="RGB").save(path)
        return Example(path, pixels.transpose(2, 0, 1).astype(np.float32))


def _frame_to_array(img: Any) -> np.ndarray:
    """Convert one decoded Pillow frame to float32 (C, H, W), C = 1 or 3, alpha dropped."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and 32-bit grey: keep the full range, no rescaling to 8 bits.
        arr = np.asarray(img)
    elif mode in ("1", "L", "LA", "La"):
        arr = np.asarray(img.convert("L"))
    elif mode == "P":
        # Palette images may be grey or colour; expand through the palette first.
        arr = np.asarray(img.convert("RGB"))
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]):
            arr = arr[..., 0]
    else:
        # RGB, RGBA (alpha dropped), CMYK, YCbCr, LAB, ...
        arr = np.asarray(img.convert("RGB"))
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        return arr[None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))
