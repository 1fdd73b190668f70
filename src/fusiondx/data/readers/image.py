"""Read medical and ordinary image files into float arrays, and turn them into fixed-shape inputs.

:func:`read_image` opens one file (PNG/JPEG/BMP/TIFF, DICOM, NIfTI or ``.npy``) and returns an
:class:`ImageRecord` holding a channels-first float32 array. :func:`preprocess_image` then applies
windowing, channel conversion, resizing and per-image normalisation so that every case of a
modality has the same shape.

Axis conventions (channels first, spatial axes after):

- 2D images: ``(C, H, W)``; row 0 is the top of the picture as stored in the file.
- 3D volumes: ``(C, D, H, W)``.
- DICOM multi-frame: frames become ``D`` in file order; rows/columns become ``H``/``W``.
- NIfTI: the volume is first reoriented to the closest canonical RAS+ orientation with
  :func:`nibabel.as_closest_canonical` (flips and axis swaps only, no resampling), so volumes
  saved in different orientations line up. Voxel axes ``(x, y, z)`` then map to ``W`` (left ->
  right), ``H`` (posterior -> anterior) and ``D`` (inferior -> superior): the array is
  ``data.transpose(2, 1, 0)``. A 4th NIfTI axis (time, echoes, ...) becomes channels.
- ``.npy``: a 2D array is ``(H, W)``, a 3D array is ``(D, H, W)``; both get one channel.

Every problem caused by the file itself raises :class:`fusiondx.errors.DataError` naming the
file and saying how to fix it; the underlying library's message is kept inside the sentence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._common import load_numeric_npy
from fusiondx.data.readers._common import one_line as _msg
from fusiondx.errors import ConfigError, DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageRecord",
    "preprocess_image",
    "read_image",
]

_PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_DICOM_SUFFIXES = (".dcm", ".dicom")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NPY_SUFFIXES = (".npy",)
#: Every suffix :func:`read_image` understands (plus DICOM files without a suffix).
IMAGE_SUFFIXES: tuple[str, ...] = (
    _PILLOW_SUFFIXES + _DICOM_SUFFIXES + _NIFTI_SUFFIXES + _NPY_SUFFIXES
)

_NORMALIZE_CHOICES = ("zscore", "minmax", "none")

# ITU-R BT.601 luma weights, the same ones Pillow's convert("L") uses, so that an RGB image
# converted here looks like one converted by any common viewer.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class ImageRecord:
    """One image as read from disk, before any preprocessing.

    Attributes:
        array: float32, ``(C, H, W)`` for 2D or ``(C, D, H, W)`` for 3D, in the file's physical
            units where it has them (DICOM after rescale slope/intercept, NIfTI after scl_slope).
        spatial_dims: 2 or 3.
        meta: what the file says about itself, e.g. ``window_center``/``window_width``
            (DICOM), ``photometric`` (DICOM), ``inverted`` (MONOCHROME1), ``format``.
        path: the file the image came from, used to name it in later errors.
    """

    array: np.ndarray
    spatial_dims: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(path: Path) -> ImageRecord:
    """Read one image file into an :class:`ImageRecord`.

    The reader is chosen from the suffix (case-insensitive): Pillow for
    ``.png/.jpg/.jpeg/.bmp/.tif/.tiff``, pydicom for ``.dcm`` (and for files with no suffix that
    carry the ``DICM`` preamble), nibabel for ``.nii/.nii.gz`` and numpy for ``.npy``.

    Args:
        path: the image file.

    Returns:
        The image as float32, channels first, with its spatial dimensionality and metadata.

    Raises:
        DataError: the file is missing, has an unsupported suffix, cannot be decoded, has no
            pixel data, has an unsupported shape, or contains NaN/inf values.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            "file not found",
            fix="check the path in the manifest and the data root it is resolved against",
            file=path,
        )
    if path.is_dir():
        raise DataError(
            "the path is a folder, not an image file",
            fix="point the manifest at one image file (DICOM series in a folder are not read; "
            "convert them to one NIfTI or multi-frame DICOM file)",
            file=path,
        )

    suffix = _suffix(path)
    if suffix in _PILLOW_SUFFIXES:
        rec = _read_pillow(path)
    elif suffix in _DICOM_SUFFIXES or (suffix == "" and _has_dicom_preamble(path)):
        rec = _read_dicom(path)
    elif suffix in _NIFTI_SUFFIXES:
        rec = _read_nifti(path)
    elif suffix in _NPY_SUFFIXES:
        rec = _read_npy(path)
    else:
        shown = suffix or "no suffix (and no DICOM preamble)"
        raise DataError(
            f"unsupported image file type: {shown}",
            fix="use one of " + ", ".join(IMAGE_SUFFIXES) + ", or convert the file",
            file=path,
        )

    rec.path = path
    _check_finite(rec.array, path)
    return rec


def _suffix(path: Path) -> str:
    """Lower-case suffix, treating ``.nii.gz`` as one suffix."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _has_dicom_preamble(path: Path) -> bool:
    """True when the file has the 128-byte preamble followed by ``DICM`` (DICOM Part 10)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _check_finite(array: np.ndarray, path: Path) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        n_bad = int(array.size - finite.sum())
        raise DataError(
            f"the image has {n_bad} NaN or infinite pixel value(s)",
            fix="replace or mask the invalid pixels in the file, or remove the case from the "
            "manifest",
            file=path,
        )


def _read_pillow(path: Path) -> ImageRecord:
    from PIL import Image

    try:
        with Image.open(path) as img:
            # load() forces decoding now: Image.open only reads the header, so a truncated
            # file would otherwise fail later, far from here.
            img.load()
            frames = [_pillow_frame_to_array(img)]
            n_frames = int(getattr(img, "n_frames", 1))
            # Multi-page TIFFs are stacks of slices: read them all as a 3D volume.
            for i in range(1, n_frames):
                img.seek(i)
                img.load()
                frames.append(_pillow_frame_to_array(img))
            mode = img.mode
    except DataError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... for bad files
        raise DataError(
            f"the image file cannot be decoded (Pillow: {_msg(exc)})",
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
    # (D, C, H, W) -> (C, D, H, W)
    volume = np.stack(frames, axis=0).transpose(1, 0, 2, 3)
    return ImageRecord(array=np.ascontiguousarray(volume), spatial_dims=3, meta=meta)


def _pillow_frame_to_array(img: Any) -> np.ndarray:
    """Convert one decoded Pillow frame to float32 (C, H, W), C = 1 or 3, alpha dropped."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and 32-bit grey: keep the full range, no rescaling to 8 bits.
        arr = np.asarray(img)
    elif mode in ("1", "L", "LA", "La"):
        arr = np.asarray(img.convert("L"))
    elif mode == "P":
        # Palette images may be grey or colour; expand through the palette first.
        rgb = img.convert("RGB")
        arr = np.asarray(rgb)
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]):
            arr = arr[..., 0]
    else:
        # RGB, RGBA (alpha dropped), CMYK, YCbCr, LAB, ...
        arr = np.asarray(img.convert("RGB"))
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        return arr[None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _read_dicom(path: Path) -> ImageRecord:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise DataError(
            f"the file is not a valid DICOM file (pydicom: {_msg(exc)})",
            fix="check that the file is a complete DICOM Part 10 file (with the 'DICM' "
            "preamble); re-export it from the PACS or scanner",
            file=path,
        ) from exc
    except Exception as exc:  # truncated/corrupt files raise many types deep inside pydicom
        raise DataError(
            f"the DICOM file cannot be read (pydicom: {_msg(exc)})",
            fix="check that the file is complete and not corrupt; re-export or re-download it",
            file=path,
        ) from exc

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DataError(
            "the DICOM file has no pixel data (it may be a report, structured report or "
            "presentation state)",
            fix="point the manifest at the DICOM image itself, or remove the case",
            file=path,
        )

    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing decoder plugins, truncated PixelData, bad tags, ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", syntax)
        raise DataError(
            f"the DICOM pixel data cannot be decoded (transfer syntax: {syntax_name}; "
            f"pydicom: {_msg(exc)})",
            fix="decompress the file (e.g. 'gdcmconv --raw' or 'dcmdjpeg'), install a pydicom "
            "decoder plugin such as pylibjpeg, or re-export it",
            file=path,
        ) from exc

    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()

    try:
        values = _dicom_modality_values(pixels, ds, n_frames)
    except Exception as exc:  # malformed LUT/rescale tags
        raise DataError(
            f"the DICOM rescale or modality LUT tags are invalid (pydicom: {_msg(exc)})",
            fix="correct RescaleSlope/RescaleIntercept or the Modality LUT Sequence in the file",
            file=path,
        ) from exc

    meta: dict[str, Any] = {
        "format": "dicom",
        "photometric": photometric,
        "modality": str(ds.get("Modality", "")),
        "n_frames": n_frames,
    }
    center, width = _dicom_window(ds)
    if center is not None and width is not None:
        meta["window_center"] = center
        meta["window_width"] = width

    if photometric == "MONOCHROME1" and samples == 1:
        # MONOCHROME1 shows low values as white. Invert so that bright = dense, as in
        # MONOCHROME2. Reflecting about the midpoint of the range the stored bits can hold
        # (after rescale) keeps values in the same range and maps every file of a dataset the
        # same way, unlike reflecting about each image's own min/max.
        lo, hi = _dicom_value_range(ds)
        values = (lo + hi) - values
        meta["inverted"] = True
        if "window_center" in meta:
            meta["window_center"] = (lo + hi) - meta["window_center"]

    # pixel_array layout: (rows, cols), (frames, rows, cols), (rows, cols, 3) or
    # (frames, rows, cols, 3). Colour data is returned as RGB by pydicom (YBR converted).
    if samples > 1 and samples != 3:
        raise DataError(
            f"the DICOM image has {samples} samples per pixel; only 1 (grey) or 3 (colour) "
            "are supported",
            fix="convert the image to greyscale or RGB",
            file=path,
        )
    values = np.moveaxis(values, -1, 0) if samples > 1 else values[None]  # channels first
    spatial_dims = 3 if n_frames > 1 else 2
    if values.ndim != spatial_dims + 1:
        raise DataError(
            f"the DICOM pixel data has an unexpected shape {tuple(pixels.shape)}",
            fix="check NumberOfFrames, Rows, Columns and SamplesPerPixel in the file",
            file=path,
        )
    return ImageRecord(
        array=np.ascontiguousarray(values, dtype=np.float32),
        spatial_dims=spatial_dims,
        meta=meta,
    )


def _first(value: Any) -> Any:
    """First element of a DICOM multi-valued element, or the value itself."""
    if value is None:
        return None
    # pydicom's MultiValue is a Sequence; strings and bytes are single values.
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value[0] if len(value) else None
    return value


def _shared_group_item(ds: Any, sequence: str) -> Any:
    """The first item of ``sequence`` in the Shared Functional Groups (enhanced multi-frame)."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not shared:
        return None
    seq = shared[0].get(sequence)
    return seq[0] if seq else None


def _dicom_modality_values(pixels: np.ndarray, ds: Any, n_frames: int) -> np.ndarray:
    """Apply the Modality LUT or rescale slope/intercept, giving physical units (e.g. HU)."""
    from pydicom.pixels import apply_modality_lut

    if "ModalityLUTSequence" in ds:
        return apply_modality_lut(pixels, ds).astype(np.float64)

    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    if slope is None and intercept is None:
        # Enhanced multi-frame objects keep rescale in functional groups instead.
        item = _shared_group_item(ds, "PixelValueTransformationSequence")
        if item is not None:
            slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
        else:
            per_frame = ds.get("PerFrameFunctionalGroupsSequence")
            if per_frame and n_frames > 1 and len(per_frame) == pixels.shape[0]:
                out = pixels.astype(np.float64)
                for i, frame_group in enumerate(per_frame):
                    seq = frame_group.get("PixelValueTransformationSequence")
                    if seq:
                        s = float(seq[0].get("RescaleSlope", 1.0) or 1.0)
                        b = float(seq[0].get("RescaleIntercept", 0.0) or 0.0)
                        out[i] = out[i] * s + b
                return out
    s = 1.0 if slope is None or slope == "" else float(slope)
    b = 0.0 if intercept is None or intercept == "" else float(intercept)
    return pixels.astype(np.float64) * s + b


def _dicom_value_range(ds: Any) -> tuple[float, float]:
    """The range of values the stored bits can hold, mapped through rescale slope/intercept."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        smin, smax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        smin, smax = 0, 2**bits - 1
    slope = float(_first(ds.get("RescaleSlope", 1.0)) or 1.0)
    intercept = float(_first(ds.get("RescaleIntercept", 0.0)) or 0.0)
    a, b = smin * slope + intercept, smax * slope + intercept
    return float(min(a, b)), float(max(a, b))


def _dicom_window(ds: Any) -> tuple[float | None, float | None]:
    """WindowCenter/WindowWidth from the header (first value when multi-valued)."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None:
        item = _shared_group_item(ds, "FrameVOILUTSequence")
        if item is not None:
            center, width = _first(item.get("WindowCenter")), _first(item.get("WindowWidth"))
    try:
        if center is None or width is None or center == "" or width == "":
            return None, None
        return float(center), float(width)
    except (TypeError, ValueError):
        # A malformed window is not fatal: the image is still usable without it.
        return None, None


def _read_nifti(path: Path) -> ImageRecord:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        if len(img.shape) >= 3:
            # Only flips/permutations: aligns differently oriented volumes without resampling.
            img = nib.as_closest_canonical(img)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib errors, ...
        raise DataError(
            f"the NIfTI file cannot be read (nibabel: {_msg(exc)})",
            fix="check that the file is a complete, valid NIfTI-1/2 file (gzip-compressed "
            "files must end in .nii.gz); re-export it",
            file=path,
        ) from exc

    meta: dict[str, Any] = {"format": "nifti", "file_shape": tuple(int(s) for s in data.shape)}
    with contextlib.suppress(Exception):  # voxel sizes are informative only
        meta["voxel_size"] = tuple(float(z) for z in img.header.get_zooms()[:3])

    # Drop trailing singleton axes beyond the 3rd (e.g. (x, y, z, 1)).
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]

    if data.ndim == 2:
        return ImageRecord(array=np.ascontiguousarray(data.T[None]), spatial_dims=2, meta=meta)
    if data.ndim == 3:
        vol = data.transpose(2, 1, 0)[None]  # (1, z, y, x)
    elif data.ndim == 4:
        vol = data.transpose(3, 2, 1, 0)  # (t, z, y, x): the 4th axis becomes channels
    else:
        raise DataError(
            f"the NIfTI image has {data.ndim} dimensions {meta['file_shape']}; only 2D, 3D and "
            "4D (channels last) are supported",
            fix="split the file into 3D or 4D volumes",
            file=path,
        )
    spatial = vol.shape[1:]
    singleton = [i for i, s in enumerate(spatial) if s == 1]
    if len(singleton) == 1:
        # A single slice stored as a 3D volume is a 2D image.
        vol = np.squeeze(vol, axis=singleton[0] + 1)
        return ImageRecord(array=np.ascontiguousarray(vol), spatial_dims=2, meta=meta)
    if len(singleton) > 1:
        raise DataError(
            f"the NIfTI image is a line, not an image (shape {meta['file_shape']})",
            fix="check the file; it should hold a 2D slice or a 3D volume",
            file=path,
        )
    return ImageRecord(array=np.ascontiguousarray(vol), spatial_dims=3, meta=meta)


def _read_npy(path: Path) -> ImageRecord:
    data = load_numeric_npy(path, what="image", fix_shape="(e.g. float32 or uint16)")
    meta: dict[str, Any] = {"format": "npy"}
    if data.ndim == 2:
        return ImageRecord(array=data.astype(np.float32)[None], spatial_dims=2, meta=meta)
    if data.ndim == 3:
        return ImageRecord(array=data.astype(np.float32)[None], spatial_dims=3, meta=meta)
    raise DataError(
        f"the .npy image has shape {data.shape}; expected a 2D (H, W) image or a 3D (D, H, W) "
        "volume",
        fix="save one greyscale image or volume per file (colour .npy images are not supported; "
        "save them as PNG)",
        file=path,
    )


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


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
        rec: the image as read by :func:`read_image`.
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
