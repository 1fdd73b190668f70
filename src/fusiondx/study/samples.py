"""Test cases to look at, for tasks whose output is read or seen rather than scored: generated
findings beside the reference, predicted boxes drawn on the image (see
:meth:`fusiondx.tasks.TaskType.samples`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.config import Config
from fusiondx.study.analysis import EntryData
from fusiondx.tasks import Shown, TaskInfo, task_type


def samples(a: EntryData, b: EntryData, info: TaskInfo, cfg: Config) -> dict[str, Any] | None:
    """A few test cases of the winner ``a`` and the best single model ``b`` (their first seeds);
    a figure among them is stored as an image."""
    from fusiondx.study.plots import figure_uri

    out = task_type(info).samples(
        info,
        Shown(a.entry.id, a.entry.label, a.frames[0]),
        Shown(b.entry.id, b.entry.label, b.frames[0]),
        _image_loader(info, cfg),
    )
    if out is not None and out.get("figure") is not None and not isinstance(out["figure"], str):
        out["figure"] = figure_uri(out["figure"])
    return out


def _image_loader(info: TaskInfo, cfg: Config) -> Any:
    """case id -> the decoded image (C, *S) the task's targets are drawn on (read when asked)."""
    from fusiondx.data.manifest import read_manifest, resolve_path
    from fusiondx.data.readers.image import read_image

    manifest: list[Any] = []

    def load(case_id: str) -> np.ndarray:
        if not manifest:
            manifest.append(
                read_manifest(cfg.data.manifest, sep=cfg.data.sep).set_index(cfg.data.id_column)
            )
        column = cfg.modality(info.image).column  # type: ignore[union-attr, arg-type]
        path = resolve_path(
            str(manifest[0].loc[case_id, column]),
            cfg.data.data_root,
            column=column,
            case_id=case_id,
            row=0,
        )
        return read_image(path).array

    return load
