"""The data layer's side of task types: the label cells, and how to open the files they name.

A task type (:mod:`fusiondx.tasks`) reads its targets from a :class:`LabelSource`; only the data
layer knows the image readers and the data root, so it hands them over as ``open_image``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fusiondx.data.manifest import resolve_path
from fusiondx.errors import DataError
from fusiondx.tasks import LabelSource, TaskInfo, task_type

if TYPE_CHECKING:
    from fusiondx.config import Config


def label_source(df: pd.DataFrame, ids: pd.Series | None, cfg: Config | None = None) -> LabelSource:
    """The manifest rows and case ids, with image files opened under the config's data root."""
    if cfg is None:
        return LabelSource(df, ids)
    root = cfg.data.data_root

    def open_image(cell: str, column: str, case_id: str, row: int) -> tuple[np.ndarray, Path]:
        from fusiondx.data.readers.image import read_image

        path = resolve_path(cell, root, column=column, case_id=case_id, row=row)
        try:
            # Every file the reader opens (a series' slices too) stays under the data root.
            return read_image(path, root=root).array, path
        except DataError as err:
            raise err.at(case_id=case_id, row=row, column=column) from None

    return LabelSource(df, ids, cfg, open_image)


def encode_targets(
    info: TaskInfo,
    df: pd.DataFrame,
    ids: pd.Series | None,
    cfg: Config | None = None,
    *,
    errors: list[DataError] | None = None,
) -> np.ndarray:
    """Every row's target, as the task's type encodes it (see :meth:`TaskType.encode`).

    With ``errors`` given, a type that checks cell by cell appends every bad cell there instead
    of raising (and skips empty cells, which the manifest checks report)."""
    return task_type(info).encode(info, label_source(df, ids, cfg), errors)


def split_strata(
    info: TaskInfo, df: pd.DataFrame, ids: pd.Series, cfg: Config | None = None
) -> np.ndarray:
    """What the split is stratified on, read from the label cells (see :meth:`TaskType.split_key`)."""
    return task_type(info).split_key(info, label_source(df, ids, cfg))
