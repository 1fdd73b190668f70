"""The study's data summary: cases per split and class (per fold with folds) and how often each
modality is present, read once before any training (which warms the shared decoded cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from fusiondx.config import Config, load_config
from fusiondx.study.plan import BASELINE_FUSION, Entry, Replicate, run_config
from fusiondx.tasks import task_type


def data_summary(
    cfg: Config, out_dir: Path, reps: list[Replicate], task: str, progress: bool, console: Console
) -> dict[str, Any]:
    """Decode every file once (warming the shared cache) and count cases per split and class:
    of the one split of every seed, or of each fold (``per_fold``, with ``splits`` the first)."""
    from fusiondx.data.labelling import label_cases
    from fusiondx.data.store import prepare

    everything = Entry(
        "data", "data", "fusion", BASELINE_FUSION, tuple(m.name for m in cfg.modalities)
    )
    console.print("Reading and decoding the data once for every training ...")
    prepared = prepare(
        load_config(run_config(cfg, everything, reps[0], out_dir, None)), progress=progress
    )
    store = prepared.store
    info = next(t for t in prepared.tasks if t.name == task)
    splits = _split_counts(info, store.targets[task], store.split)
    availability = {
        m: {s: float(store.mask[store.split == s, i].mean()) for s in ("train", "val", "test")}
        for i, m in enumerate(store.modalities)
    }
    out: dict[str, Any] = {"splits": splits, "availability": availability, "per_fold": None}
    if reps[0].fold is not None:
        out["per_fold"] = [splits] + [
            _split_counts(info, lab.targets[task], lab.split)
            for lab in (
                label_cases(load_config(run_config(cfg, everything, r, out_dir, None)))
                for r in reps[1:]
            )
        ]
    return out


def _split_counts(info: Any, y: np.ndarray, split: np.ndarray) -> dict[str, Any]:
    tt = task_type(info)
    return {
        s: {"cases": int((split == s).sum()), "classes": tt.split_counts(info, y[split == s])}
        for s in ("train", "val", "test")
    }
