"""NIfTI-1/2 volumes and slices through nibabel, reoriented to the closest canonical RAS+."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._base import Example, ImageReader, ImageRecord
from fusiondx.data.readers._common import one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader


@register_reader("nifti", kind="image", suffixes=(".nii", ".nii.gz"))
class NiftiReader(ImageReader):
    """A 2D slice or 3D volume (a 4th axis becomes channels), axes ``(x, y, z)`` -> ``(W, H, D)``.

    The volume is first reoriented with :func:`nibabel.as_closest_canonical` (flips and axis
    swaps only, no resampling), so volumes saved in different orientations line up: ``W`` runs
    left -> right, ``H`` posterior -> anterior and ``D`` inferior -> superior.
    """

    def read(self, path: Path) -> ImageRecord:
        import nibabel as nib

        try:
            img: Any = nib.load(str(path))
            if len(img.shape) >= 3:
                # Only flips/permutations: aligns differently oriented volumes without resampling.
                img = nib.as_closest_canonical(img)
            data = np.asarray(img.get_fdata(dtype=np.float32))
        except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib errors, ...
            raise DataError(
                f"the NIfTI file cannot be read (nibabel: {one_line(exc)})",
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
                f"the NIfTI image has {data.ndim} dimensions {meta['file_shape']}; only 2D, 3D "
                "and 4D (channels last) are supported",
                fix="split the file into 3D or 4D volumes",
                file=path,
            )
        singleton = [i for i, s in enumerate(vol.shape[1:]) if s == 1]
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

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        import nibabel as nib

        data = rng.normal(size=(4, 3, 5)).astype(np.float32)  # (x, y, z)
        path = folder / "volume.nii.gz"
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
        return Example(path, data.transpose(2, 1, 0)[None])
