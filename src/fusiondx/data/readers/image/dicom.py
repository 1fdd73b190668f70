"""One DICOM file through pydicom: a 2D image, or a 3D volume when it holds several frames.

Values come out in physical units (Modality LUT or rescale slope/intercept, e.g. Hounsfield
units), MONOCHROME1 is inverted so that bright means dense, and the header's window is kept in
the record's meta for ``window: header``. :func:`decode_dataset` is shared with the DICOM series
reader, which decodes every slice the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._base import Example, ImageReader, ImageRecord
from fusiondx.data.readers._common import one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader

__all__ = [
    "DicomReader",
    "decode_dataset",
    "has_dicom_preamble",
    "load_dataset",
    "write_dicom_file",
]


def has_dicom_preamble(path: Path) -> bool:
    """True when the file has the 128-byte preamble followed by ``DICM`` (DICOM Part 10)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _no_suffix_dicom(path: Path) -> bool:
    return path.suffix == "" and path.is_file() and has_dicom_preamble(path)


@register_reader(
    "dicom",
    kind="image",
    suffixes=(".dcm", ".dicom"),
    claims=_no_suffix_dicom,
    hint="a DICOM file without suffix needs the 'DICM' preamble",
)
class DicomReader(ImageReader):
    """A DICOM image (single or multi-frame) in physical units, with its header window."""

    def read(self, path: Path) -> ImageRecord:
        return decode_dataset(load_dataset(path), path)

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        stored = rng.integers(0, 4096, (6, 5)).astype(np.uint16)
        path = write_dicom_file(folder / "ct.dcm", stored, slope=2.0, intercept=-1024.0)
        return Example(path, (stored.astype(np.float32) * 2 - 1024)[None])


def load_dataset(path: Path) -> Any:
    """The pydicom dataset of ``path``, every failure a DataError naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise DataError(
            f"the file is not a valid DICOM file (pydicom: {one_line(exc)})",
            fix="check that the file is a complete DICOM Part 10 file (with the 'DICM' "
            "preamble); re-export it from the PACS or scanner",
            file=path,
        ) from exc
    except Exception as exc:  # truncated/corrupt files raise many types deep inside pydicom
        raise DataError(
            f"the DICOM file cannot be read (pydicom: {one_line(exc)})",
            fix="check that the file is complete and not corrupt; re-export or re-download it",
            file=path,
        ) from exc


def decode_dataset(ds: Any, path: Path) -> ImageRecord:
    """Decode a pydicom dataset read from ``path`` into a channels-first float32 record."""
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
        raise DataError(
            f"the DICOM pixel data cannot be decoded (transfer syntax: "
            f"{getattr(syntax, 'name', syntax)}; pydicom: {one_line(exc)})",
            fix="decompress the file (e.g. 'gdcmconv --raw' or 'dcmdjpeg'), install a pydicom "
            "decoder plugin such as pylibjpeg, or re-export it",
            file=path,
        ) from exc

    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    try:
        values = _modality_values(pixels, ds, n_frames)
    except Exception as exc:  # malformed LUT/rescale tags
        raise DataError(
            f"the DICOM rescale or modality LUT tags are invalid (pydicom: {one_line(exc)})",
            fix="correct RescaleSlope/RescaleIntercept or the Modality LUT Sequence in the file",
            file=path,
        ) from exc

    meta: dict[str, Any] = {
        "format": "dicom",
        "photometric": photometric,
        "modality": str(ds.get("Modality", "")),
        "n_frames": n_frames,
    }
    center, width = _window(ds)
    if center is not None and width is not None:
        meta["window_center"], meta["window_width"] = center, width

    if photometric == "MONOCHROME1" and samples == 1:
        # MONOCHROME1 shows low values as white. Invert so that bright = dense, as in
        # MONOCHROME2. Reflecting about the midpoint of the range the stored bits can hold
        # (after rescale) keeps values in the same range and maps every file of a dataset the
        # same way, unlike reflecting about each image's own min/max.
        lo, hi = _value_range(ds)
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
        array=np.ascontiguousarray(values, dtype=np.float32), spatial_dims=spatial_dims, meta=meta
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


def _modality_values(pixels: np.ndarray, ds: Any, n_frames: int) -> np.ndarray:
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


def _value_range(ds: Any) -> tuple[float, float]:
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


def _window(ds: Any) -> tuple[float | None, float | None]:
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


def write_dicom_file(
    path: Path,
    stored: np.ndarray,
    *,
    slope: float = 1.0,
    intercept: float = 0.0,
    position: Sequence[float] | None = None,
    orientation: Sequence[float] | None = None,
    instance: int | None = None,
    series_uid: str | None = None,
) -> Path:
    """Write a minimal uncompressed 12-bit CT slice (the readers' examples; tests build series
    with it). ``position``/``orientation`` set ImagePositionPatient/ImageOrientationPatient."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = "CT"
    ds.PatientID = "EXAMPLE"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = 40.0, 400.0
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if instance is not None:
        ds.InstanceNumber = instance
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
