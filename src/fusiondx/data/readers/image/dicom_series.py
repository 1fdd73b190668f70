"""A DICOM series given as a folder, one file per slice, read as one 3D volume.

The slices are the folder's files ending in ``.dcm``/``.dicom``, without suffix, or with a
numeric suffix (files named by their UID, ``1.2.840....42``); other files (``.txt``, ``.json``,
hidden files, ``DICOMDIR``) and sub-folders are left alone. Each slice is decoded like a single
DICOM file (its own rescale slope/intercept applied, MONOCHROME1 inverted), then the slices are
stacked along ``D``, sorted by ``ImagePositionPatient`` projected on the slice normal (the cross
product of the ``ImageOrientationPatient`` row and column directions), so that ``D`` runs along
the normal (inferior -> superior for axial slices); by ``InstanceNumber`` when a slice lacks
position or orientation; by file name when a slice lacks both.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._base import Example, ImageReader, ImageRecord
from fusiondx.data.readers.image.dicom import decode_dataset, load_dataset, write_dicom_file
from fusiondx.errors import DataError
from fusiondx.registry import register_reader

_SLICE_SUFFIXES = (".dcm", ".dicom")
_FIX_ONE_SERIES = "keep one series per folder, one file per slice (move the other files out)"


def _is_folder(path: Path) -> bool:
    return path.is_dir()


def slice_files(folder: Path) -> list[Path]:
    """The files of ``folder`` read as slices, by name."""
    out = []
    for f in sorted(folder.iterdir()):
        suffix = f.suffix.lower()
        if f.name.startswith(".") or f.name.upper() == "DICOMDIR" or not f.is_file():
            continue
        if suffix in _SLICE_SUFFIXES or suffix == "" or suffix[1:].isdigit():
            out.append(f)
    return out


@register_reader(
    "dicom_series",
    kind="image",
    suffixes=(),
    claims=_is_folder,
    hint="a folder of DICOM files (one per slice) is read as one volume",
)
class DicomSeriesReader(ImageReader):
    """A folder of single-frame DICOM slices -> a ``(C, D, H, W)`` volume in physical units."""

    def files(self, path: Path) -> list[Path]:
        try:
            return slice_files(path)
        except OSError:
            return [path]

    def read(self, path: Path) -> ImageRecord:
        try:
            files = slice_files(path)
        except OSError as exc:
            raise DataError(
                f"the folder cannot be listed ({exc})", fix="check its permissions", file=path
            ) from exc
        if not files:
            seen = sorted(f.name for f in path.iterdir())[:5]
            raise DataError(
                "the folder holds no DICOM files (slices end in .dcm or .dicom, or have no suffix)"
                + (f"; it holds: {', '.join(seen)}" if seen else "; it is empty"),
                fix="point the manifest at a folder of one DICOM file per slice, or at one image "
                "file",
                file=path,
            )
        slices = [(f, _slice(path, f, lambda f=f: load_dataset(f))) for f in files]
        _one_series(path, slices)
        order, how = _order(path, slices)
        records = [
            (
                slices[i][0],
                _slice(path, slices[i][0], lambda i=i: decode_dataset(slices[i][1], slices[i][0])),
            )
            for i in order
        ]
        for f, rec in records:
            if rec.spatial_dims != 2:
                raise DataError(
                    f"slice '{f.name}' of the DICOM series in folder '{path}' holds "
                    f"{rec.meta.get('n_frames')} frames, not one",
                    fix="point the manifest at the multi-frame file itself, or keep single-frame "
                    "slices in the folder",
                    file=f,
                )
        shapes = Counter(rec.array.shape for _, rec in records)
        common = shapes.most_common(1)[0][0]
        for f, rec in records:
            if rec.array.shape != common:
                raise DataError(
                    f"slice '{f.name}' of the DICOM series in folder '{path}' has shape "
                    f"{rec.array.shape[1:]} (channels {rec.array.shape[0]}), but "
                    f"{shapes[common]} of its {len(records)} slices have {common[1:]} "
                    f"(channels {common[0]})",
                    fix=_FIX_ONE_SERIES,
                    file=f,
                )
        volume = np.stack([rec.array for _, rec in records], axis=1)  # (C, D, H, W)
        meta = dict(records[0][1].meta)
        meta.update(format="dicom_series", n_slices=len(records), slice_order=how)
        meta.pop("n_frames", None)
        return ImageRecord(array=np.ascontiguousarray(volume), spatial_dims=3, meta=meta)

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        from pydicom.uid import generate_uid

        series = folder / "series"
        series.mkdir()
        uid = generate_uid()
        expected = {}
        # File names out of position order, and a rescale per slice: both must be undone.
        for name, z, slope in (("a.dcm", 10.0, 1.0), ("b.dcm", 0.0, 2.0), ("c", 5.0, 0.5)):
            stored = rng.integers(0, 4096, (5, 4)).astype(np.uint16)
            write_dicom_file(
                series / name,
                stored,
                slope=slope,
                intercept=-100.0,
                position=(0.0, 0.0, z),
                orientation=(1, 0, 0, 0, 1, 0),
                series_uid=uid,
            )
            expected[z] = stored.astype(np.float32) * slope - 100.0
        volume = np.stack([expected[z] for z in sorted(expected)])[None]
        return Example(series, volume, damage=series / "b.dcm")


def _slice(folder: Path, f: Path, decode: Any) -> Any:
    """Run ``decode()``; a DataError it raises names the folder and the slice."""
    try:
        return decode()
    except DataError as err:
        raise DataError(
            f"slice '{f.name}' of the DICOM series in folder '{folder}': {err.what}",
            fix=err.fix,
            file=f,
        ) from err


def _one_series(folder: Path, slices: list[tuple[Path, Any]]) -> None:
    first: tuple[Path, str] | None = None
    for f, ds in slices:
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        if not uid:
            continue
        if first is None:
            first = (f, uid)
        elif uid != first[1]:
            raise DataError(
                f"the folder '{folder}' mixes DICOM series: slice '{f.name}' belongs to series "
                f"{uid}, slice '{first[0].name}' to {first[1]}",
                fix=_FIX_ONE_SERIES,
                file=f,
            )


def _floats(value: Any, n: int) -> np.ndarray | None:
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and np.isfinite(out).all() else None


def _order(folder: Path, slices: list[tuple[Path, Any]]) -> tuple[list[int], str]:
    """Slice indices in stacking order, and how they were ordered."""
    pos = [p for _, ds in slices if (p := _floats(ds.get("ImagePositionPatient"), 3)) is not None]
    ori = [
        o for _, ds in slices if (o := _floats(ds.get("ImageOrientationPatient"), 6)) is not None
    ]
    if len(pos) == len(slices) and len(ori) == len(slices):  # every slice has both
        ref = ori[0]
        for (f, _), o in zip(slices, ori, strict=True):
            if np.abs(o - ref).max() > 1e-3:
                raise DataError(
                    f"slice '{f.name}' of the DICOM series in folder '{folder}' is oriented "
                    f"differently from slice '{slices[0][0].name}' (a localizer mixed in?)",
                    fix=_FIX_ONE_SERIES,
                    file=f,
                )
        normal = np.cross(ref[:3], ref[3:])
        keys: list[float] = [float(normal @ p) for p in pos]
        how = "position"
    else:
        numbers = [ds.get("InstanceNumber") for _, ds in slices]
        try:
            keys = [float(n) for n in numbers]
            how = "instance"
        except (TypeError, ValueError):
            return list(range(len(slices))), "name"
    order = sorted(range(len(slices)), key=lambda i: keys[i])
    for a, b in zip(order, order[1:], strict=False):
        if abs(keys[a] - keys[b]) < 1e-6:
            what = "position" if how == "position" else "InstanceNumber"
            raise DataError(
                f"slices '{slices[a][0].name}' and '{slices[b][0].name}' of the DICOM series in "
                f"folder '{folder}' have the same {what} (two series, or a copied slice?)",
                fix=_FIX_ONE_SERIES,
                file=slices[b][0],
            )
    return order, how
