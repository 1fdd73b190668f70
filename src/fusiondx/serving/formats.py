"""What an uploaded file is, told by its content (magic bytes, a header that parses), never by
the name the client gave it; the answer is the suffix FusionDx's readers expect for that format.

The server then writes the bytes under a name of its own with that suffix, and the readers of
training decode it (a file that looks right but does not decode is caught there).
"""

from __future__ import annotations

import gzip
import io
import re
import struct
from dataclasses import dataclass

from fusiondx.serving.errors import RequestError

# A WFDB header's record line: name[/segments] n_signals [fs[/counter[(base)]] [n_samples ...]]
_WFDB_RECORD = re.compile(r"^([A-Za-z0-9_.-]+)(/\d+)?\s+(\d+)(\s+.*)?$")


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the form field it came in and its bytes (the client's name is kept only
    to be shown back in messages)."""

    field: str
    data: bytes
    filename: str = ""


def _image_suffix(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"BM") and len(data) > 26:
        return ".bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if len(data) > 132 and data[128:132] == b"DICM":
        return ".dcm"
    if _is_nifti(data):
        return ".nii"
    if data.startswith(b"\x1f\x8b"):
        try:
            head = gzip.GzipFile(fileobj=io.BytesIO(data)).read(352)
        except (OSError, EOFError):
            return None
        return ".nii.gz" if _is_nifti(head) else None
    if data.startswith(b"\x93NUMPY"):
        return ".npy"
    return None


def _is_nifti(head: bytes) -> bool:
    if len(head) < 348:
        return False
    size_le, size_be = struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]
    if 348 in (size_le, size_be):
        return head[344:348] in (b"n+1\x00", b"ni1\x00")
    return 540 in (size_le, size_be) and head[4:8] in (b"n+2\x00", b"ni2\x00")


def _text(data: bytes) -> str | None:
    """The bytes as text, when they are text (UTF-8, no NUL)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def wfdb_header(data: bytes) -> tuple[str, list[str]] | None:
    """(record name, signal file names) when ``data`` is a WFDB header, else None."""
    text = _text(data)
    if text is None:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        return None
    m = _WFDB_RECORD.match(lines[0])
    if m is None:
        return None
    n = int(m.group(3))
    if n < 1 or len(lines) < 1 + n:
        return None
    files = [ln.split()[0] for ln in lines[1 : 1 + n]]
    return m.group(1), files


def _looks_csv(data: bytes) -> bool:
    text = _text(data[:65536])
    if text is None:
        return False
    rows = [r for r in text.splitlines()[:5] if r.strip()]
    return bool(rows) and any(
        all(_number(c) for c in re.split(r"[,;\t]", r) if c.strip()) for r in rows
    )


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def describe(data: bytes) -> str:
    """What the bytes look like, in words, for a message."""
    if _image_suffix(data):
        return f"an image file ({_image_suffix(data)})"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if wfdb_header(data):
        return "a WFDB header (.hea)"
    if _text(data) is not None:
        return "plain text"
    return "binary data of no known format"


IMAGE_FORMATS = "PNG, JPEG, BMP, TIFF, DICOM (.dcm with its 'DICM' preamble), NIfTI, NPY"
SIGNAL_FORMATS = "a WFDB pair (.hea header + .dat), EDF/BDF, NPY, CSV of numbers"


MAX_VOXEL_BYTES = 512 * 2**20
"""Largest NIfTI volume (as its header declares it) decoded: a small .nii.gz may inflate to
gigabytes, so the declared size is checked before any reader inflates it."""


def nifti_bytes(head: bytes) -> int | None:
    """The voxel data size a NIfTI-1 header declares (None for NIfTI-2 or an unreadable one)."""
    for order in "<>":
        if struct.unpack(order + "i", head[:4])[0] == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            n = 1
            for d in dims[1 : 1 + max(0, min(7, dims[0]))]:
                n *= max(1, int(d))
            return n * max(1, bitpix // 8)
    return None


def image_suffix(up: Upload) -> str:
    """The reader suffix of an uploaded image; a :class:`RequestError` naming the field if none."""
    suffix = _image_suffix(up.data)
    if suffix in (".nii", ".nii.gz"):
        head = (
            up.data[:352]
            if suffix == ".nii"
            else gzip.GzipFile(fileobj=io.BytesIO(up.data)).read(352)
        )
        size = nifti_bytes(head)
        if size is not None and size > MAX_VOXEL_BYTES:
            raise RequestError(
                f"The NIfTI volume uploaded as '{up.field}' declares {size / 2**20:.0f} MB of "
                f"voxels; the service decodes at most {MAX_VOXEL_BYTES / 2**20:.0f} MB.",
                field=up.field,
                fix="crop or downsample the volume before sending it",
                status=413,
            )
    if suffix is None:
        raise RequestError(
            f"The file uploaded as '{up.field}' is {describe(up.data)}, not an image FusionDx "
            "reads.",
            field=up.field,
            fix=f"upload one of: {IMAGE_FORMATS}",
            status=415,
        )
    return suffix


def signal_suffix(up: Upload) -> str:
    """The reader suffix of an uploaded single-file signal (not a WFDB pair)."""
    data = up.data
    if data.startswith(b"\x93NUMPY"):
        return ".npy"
    if data.startswith(b"0       ") and len(data) >= 256:
        return ".edf"
    if data.startswith(b"\xffBIOSEMI") and len(data) >= 256:
        return ".bdf"
    if wfdb_header(data):
        raise RequestError(
            f"The file uploaded as '{up.field}' is a WFDB header without its data file.",
            field=up.field,
            fix=f"upload the .hea and the .dat file together, both in the field '{up.field}'",
        )
    if _looks_csv(data):
        return ".csv"
    raise RequestError(
        f"The file uploaded as '{up.field}' is {describe(data)}, not a signal FusionDx reads.",
        field=up.field,
        fix=f"upload one of: {SIGNAL_FORMATS}",
        status=415,
    )
