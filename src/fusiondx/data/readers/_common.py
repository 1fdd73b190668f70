"""Pieces shared by the readers of every kind."""

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


def confine(path: Path, root: Path | None, *, what: str, file: Path) -> None:
    """Refuse a file that lies outside the data root once symlinks are resolved.

    Args:
        path: the file a record pulls in.
        root: the data root, or None not to check.
        what: the file as the message names it, e.g. "WFDB data file 'x.dat' named in the header".
        file: the file the error is reported against (the one the manifest names).
    """
    if root is None:
        return
    full, root_r = path.resolve(), Path(root).resolve()
    if not full.is_relative_to(root_r):
        raise DataError(
            f"The {what} points outside the data root '{root_r}' (it resolves to '{full}').",
            file=file,
            fix="move the file under the data root, or set data.root to a folder containing it",
        )
