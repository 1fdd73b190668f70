"""The training curves, ``logs/metrics.csv``: one row per epoch, written as the epoch ends."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import lightning as L

from fusiondx.engine import runfolder


def _cell(v: Any) -> str:
    # As pandas writes a frame: NaN and None as empty cells, numbers in their shortest form.
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def append_curve(path: Path, row: dict[str, Any]) -> None:
    """Add one epoch to the training curves, replacing rows of this epoch and later.

    Rows from later epochs can exist after an interrupted run is resumed from an earlier
    checkpoint; the file is small, so it is rewritten whole each epoch (with the csv module:
    pandas took longer than a small model's epoch of training).
    """
    old: list[dict[str, str]] = []
    columns: list[str] = []
    if path.is_file():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            old = [r for r in reader if float(r["epoch"]) < row["epoch"]]
    columns += [k for k in row if k not in columns]
    rows = [*old, {k: _cell(v) for k, v in row.items()}]
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=columns, restval="", lineterminator="\n")
            out.writeheader()
            out.writerows(rows)

    # A kill while writing keeps the previous curves, not a truncated file.
    runfolder.write_whole(path, write)


class TrainingCurves(L.Callback):
    """Appends the module's ``epoch_metrics`` (epoch, lr, losses, every validation metric) to
    ``path`` after each validation; with several training processes, only rank 0 writes (they
    all hold the same row: validation is gathered before it is scored).

    Place it before the callback that saves the epoch's checkpoint (``BestEpoch``): a run killed
    between the two then resumes from the epoch before and writes this row again, whereas the
    other order could leave a checkpoint whose epoch has no row.

    Args:
        path: the CSV file (``logs/metrics.csv`` of the run folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = getattr(pl_module, "epoch_metrics", None)
        writer = getattr(trainer, "is_global_zero", True)
        if row is not None and not trainer.sanity_checking and writer:
            append_curve(self.path, row)
