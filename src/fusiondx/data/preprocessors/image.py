"""Images (PNG/JPEG, DICOM files and series, NIfTI, NPY; 2D or 3D) -> (C, *size) float arrays.

:func:`preprocess_image` turns one decoded :class:`ImageRecord` into a fixed shape (windowing,
channel conversion, resizing, per-image normalisation); :class:`ImagePreprocessor` applies it to
every case of a modality.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusiondx.data.manifest import some_cases
from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.readers import ImageRecord, image_files, read_image
from fusiondx.errors import ConfigError, DataError
from fusiondx.types import ModalitySpec

# An image blown up more than this in an axis is mostly interpolation (an icon, a thumbnail,
# a wrong file); it is decoded as asked, and said.
UPSCALE_WARN = 4.0

_NORMALIZE_CHOICES = ("zscore", "minmax", "none")

# ITU-R BT.601 luma weights, the same ones Pillow's convert("L") uses, so that an RGB image
# converted here looks like one converted by any common viewer.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImagePreprocessor(FilePreprocessor):
    """Decodes, windows, resizes and normalises each image; augmentation happens per batch later."""

    kind = "image"

    def __init__(self, cfg: object, root: Path) -> None:
        super().__init__(cfg, root)
        self.upscaled: list[
            tuple[str, tuple[int, ...]]
        ] = []  # (case id, spatial shape in the file)

    def spec(self) -> ModalitySpec:
        p = self.cfg.preprocessing
        return ModalitySpec(
            self.name,
            "image",
            in_channels=p.channels,
            spatial_dims=len(p.size),
            image_size=tuple(p.size),
        )

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        p = self.cfg.preprocessing
        return {"": ((p.channels, *p.size), np.dtype(np.float32))}

    def reset_found(self) -> None:
        self.upscaled = []

    def files_of(self, path: Path) -> list[Path]:
        return image_files(path)

    def load_case(self, path: Path, case_id: str) -> np.ndarray:
        rec = read_image(path, root=self.root)
        shape = tuple(int(s) for s in rec.array.shape[1:])
        size = self.cfg.preprocessing.size
        if len(shape) == len(size) and any(
            t > UPSCALE_WARN * s for t, s in zip(size, shape, strict=True)
        ):
            self.upscaled.append((case_id, shape))
        return self._preprocess(rec)

    def load_file(self, path: Path) -> np.ndarray:
        return self._preprocess(read_image(path, root=self.root))

    def _preprocess(self, rec: ImageRecord) -> np.ndarray:
        p = self.cfg.preprocessing
        window = tuple(p.window) if isinstance(p.window, (list, tuple)) else p.window
        return preprocess_image(
            rec, size=p.size, channels=p.channels, normalize=p.normalize, window=window
        )

    def found(self) -> tuple[list[int], list[str]]:
        if not self.upscaled:
            return [], []
        size = "x".join(map(str, self.cfg.preprocessing.size))
        shown = some_cases([f"{c} {'x'.join(map(str, s))}" for c, s in self.upscaled])
        return [], [
            f"modality '{self.name}': {len(self.upscaled)} image(s) are upscaled more than "
            f"{UPSCALE_WARN:g}x in an axis to the model size {size} (e.g. {shown}); so small an "
            "image holds little detail (an icon, a thumbnail, a wrong file?): check them, or "
            f"lower modalities[{self.name}].preprocessing.size"
        ]


def preprocess_image(
    rec: ImageRecord,
    *,
    size: Sequence[int],
    channels: int = 1,
    normalize: str = "zscore",
    window: str | tuple[float, float] | None = None,
) -> np.ndarray:
    """Window, convert channels, resize and normalise one image to a fixed shape.

    Steps, in order:

    1. Windowing (if ``window`` is given): clip to ``[center - width/2, center + width/2]``.
       ``"header"`` uses the DICOM WindowCenter/WindowWidth read into ``rec.meta``.
    2. Channel conversion: 3 -> 1 by BT.601 luminance (0.299 R + 0.587 G + 0.114 B, as
       Pillow), 1 -> 3 by repetition.
    3. Resize to ``size`` with bilinear (2D) or trilinear (3D) interpolation, anti-aliased where
       an axis shrinks (see :func:`_resize`).
    4. Per-image normalisation: ``"zscore"`` (mean 0, std 1; a constant image gives zeros),
       ``"minmax"`` (to [0, 1]; a constant image gives zeros) or ``"none"``.

    Args:
        rec: the image as read by :func:`fusiondx.data.readers.read_image`.
        size: output spatial size, ``(H, W)`` for 2D or ``(D, H, W)`` for 3D.
        channels: output channels, 1 or 3.
        normalize: ``"zscore"``, ``"minmax"`` or ``"none"``.
        window: ``(center, width)``, ``"header"`` or ``None`` for no windowing.

    Returns:
        float32 array of shape ``(channels, *size)``.

    Raises:
        DataError: the image does not fit the requested shape (2D vs 3D, channel count) or has
            no header window when ``window="header"``.
        ConfigError: an option value is invalid.
    """
    path = rec.path
    size = tuple(int(s) for s in size)
    if normalize not in _NORMALIZE_CHOICES:
        raise ConfigError(
            f"unknown image normalisation '{normalize}'",
            fix="use one of " + ", ".join(_NORMALIZE_CHOICES),
        )
    if channels not in (1, 3):
        raise ConfigError(
            f"image channels must be 1 or 3, got {channels}", fix="set channels to 1 or 3"
        )
    if any(s < 1 for s in size):
        raise ConfigError(f"image size must be positive, got {list(size)}", fix="fix the size")
    if len(size) != rec.spatial_dims:
        kind = "3D" if rec.spatial_dims == 3 else "2D"
        expected = "(D, H, W)" if rec.spatial_dims == 3 else "(H, W)"
        raise DataError(
            f"the image is {kind} (shape {tuple(rec.array.shape[1:])}) but the configured size "
            f"has {len(size)} value(s) {list(size)}",
            fix=f"give size as {expected} for this modality, or keep 2D and 3D images in "
            "separate modalities",
            file=path,
        )

    arr = np.asarray(rec.array, dtype=np.float32)

    # 1. Windowing first: it is defined in the file's physical units (e.g. HU).
    if window is not None:
        center, width = _resolve_window(rec, window)
        arr = np.clip(arr, center - width / 2.0, center + width / 2.0)

    # 2. Channels.
    c = arr.shape[0]
    if c != channels:
        if c == 3 and channels == 1:
            arr = np.tensordot(_LUMA_WEIGHTS, arr, axes=([0], [0]))[None].astype(np.float32)
        elif c == 1 and channels == 3:
            arr = np.repeat(arr, 3, axis=0)
        else:
            raise DataError(
                f"the image has {c} channel(s) but the config expects {channels}",
                fix="set channels to match the images, or convert the files to greyscale or RGB",
                file=path,
            )

    # 3. Resize.
    if tuple(arr.shape[1:]) != size:
        arr = _resize(arr, size)

    # 4. Normalise per image.
    arr = _normalize(arr, normalize)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _resolve_window(rec: ImageRecord, window: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(window, str):
        if window != "header":
            raise ConfigError(
                f"unknown image window '{window}'",
                fix="use 'header', a [center, width] pair, or null",
            )
        center, width = rec.meta.get("window_center"), rec.meta.get("window_width")
        if center is None or width is None:
            raise DataError(
                "window is 'header' but the image has no WindowCenter/WindowWidth in its header",
                fix="give the window explicitly as [center, width], or set window to null",
                file=rec.path,
            )
        if width <= 0:
            raise DataError(
                f"the header WindowWidth is {width}; it must be positive",
                fix="give the window explicitly as [center, width]",
                file=rec.path,
            )
        return float(center), float(width)
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"image window must be 'header' or [center, width], got {window!r}",
            fix="write the window as [center, width], e.g. [40, 400]",
        ) from exc
    if width <= 0:
        raise ConfigError(
            f"image window width must be positive, got {width}",
            fix="write the window as [center, width] with width > 0",
        )
    return center, width


def _resize(arr: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Resize (C, *spatial) to ``size`` with linear interpolation, anti-aliased when shrinking.

    2D uses ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``, which widens
    the interpolation kernel on shrinking axes as Pillow does. Trilinear interpolation has no
    ``antialias`` option, so 3D axes that shrink are first reduced by area averaging (a box
    filter, ``mode="area"``) and the axes that grow are then interpolated trilinearly. Both are
    much faster than Gaussian pre-smoothing (MONAI ``Resize(anti_aliasing=True)``), which
    matters for large radiographs and CT volumes loaded every epoch.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]  # add batch axis
    with torch.no_grad():
        if len(size) == 2:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        else:
            current = tuple(x.shape[2:])
            shrunk = tuple(min(s, c) for s, c in zip(size, current, strict=True))
            if shrunk != current:
                x = F.interpolate(x, size=shrunk, mode="area")
            if shrunk != size:
                x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
    return x[0].numpy()


def _normalize(arr: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return arr
    if how == "zscore":
        # float64 statistics: float32 sums over large volumes lose precision.
        mean = float(arr.mean(dtype=np.float64))
        std = float(arr.std(dtype=np.float64))
        if not np.isfinite(std) or std < 1e-8 * max(1.0, abs(mean)):
            return np.zeros_like(arr)  # constant image: nothing to standardise, avoid 0/0
        return ((arr - mean) / std).astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(arr)
    return ((arr - lo) / (hi - lo)).astype(np.float32)
