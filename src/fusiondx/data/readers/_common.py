"""Pieces shared by the image and signal readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.errors import DataError


def one_line(exc: BaseException) -> str:
    """A library's exception message on one line (errors are printed as one paragraph)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def load_numeric_npy(path: Path, *, what: str, fix_shape: str) -> np.ndarray:
    """A real-valued array from a .npy file, never unpickling anything.

    Args:
        path: the file.
        what: 'image' or 'signal', for the fix message.
        fix_shape: the expected layout, e.g. 'of shape (leads, samples)'.
    """
    try:
        # allow_pickle=False: a .npy from an untrusted source must not run code.
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(
            f"the .npy file cannot be read (numpy: {one_line(exc)})",
            fix=f"save the {what} with numpy.save as a plain numeric array (no pickled objects)",
            file=path,
        ) from exc
    if (
        not isinstance(data, np.ndarray)
        or not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_)
        or np.iscomplexobj(data)
    ):
        raise DataError(
            f"the .npy file holds {getattr(data, 'dtype', type(data))} values, not real numbers",
            fix=f"save a real-valued numeric array {fix_shape}",
            file=path,
        )
    return data
