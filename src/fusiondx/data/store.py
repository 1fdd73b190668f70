"""From manifest + config to decoded, cached arrays for every case, ready for batching.

``prepare(cfg)`` does everything before training: reads and checks the manifest, fixes the
class lists, splits cases (:mod:`fusiondx.data.labelling`), fits preprocessing on the training
split only, and decodes every file exactly once into stacked arrays (in memory, or sharded
``.npy`` files on disk that a later run with the same data and preprocessing reuses without
decoding anything, see :mod:`fusiondx.data.cache`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.data.cache import allocate, cache_root, decode_to_disk, open_cached
from fusiondx.data.groups import case_groups
from fusiondx.data.labelling import label_cases, task_targets
from fusiondx.data.manifest import check_manifest, modality_present, read_manifest
from fusiondx.data.preprocessors import Preprocessor, make_preprocessor
from fusiondx.data.protocols import remove_modalities, subsample_labels
from fusiondx.data.splits import patient_groups
from fusiondx.errors import DataError, summarise
from fusiondx.tasks import TaskInfo
from fusiondx.types import ModalitySpec


@dataclass
class CaseStore:
    """Every case's decoded inputs, presence mask, targets and split, as stacked arrays."""

    ids: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str: train | val | test | '' (no split, e.g. prediction)
    modalities: list[str]  # sorted
    inputs: dict[str, dict[str, Any]]  # modality -> {array name: (N, ...) ndarray or ShardedArray}
    mask: np.ndarray  # (N, M) bool
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # task -> (N, ...)
    notes: list[str] = field(default_factory=list)  # warnings for the user: counts, a few case ids
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    """``fairness.columns`` -> each case's subgroup (str); scored, never a model input."""

    def __len__(self) -> int:
        return len(self.ids)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def batch(self, idx: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """A training batch for these cases (tensors copied out of the store)."""
        idx = np.asarray(idx, dtype=np.int64)
        inputs: dict[str, Any] = {}
        for m in self.modalities:
            arrays = {
                k: torch.from_numpy(np.ascontiguousarray(a[idx])) for k, a in self.inputs[m].items()
            }
            inputs[m] = arrays[""] if set(arrays) == {""} else arrays
        return {
            "case_id": [str(self.ids[i]) for i in idx],
            "index": torch.from_numpy(idx),
            "inputs": inputs,
            "mask": torch.from_numpy(self.mask[idx]),
            "targets": {t: torch.from_numpy(y[idx]) for t, y in self.targets.items()},
        }


@dataclass
class Prepared:
    """A store plus what was fitted to build it (saved with a run, reused by evaluate/predict)."""

    store: CaseStore
    preprocessors: dict[str, Preprocessor]
    tasks: list[TaskInfo]

    @property
    def specs(self) -> dict[str, ModalitySpec]:
        return {m: p.spec() for m, p in sorted(self.preprocessors.items())}

    def state(self) -> dict[str, Any]:
        return {
            "preprocessors": {m: p.state() for m, p in self.preprocessors.items()},
            "specs": {m: s.to_dict() for m, s in self.specs.items()},
            "tasks": [t.to_dict() for t in self.tasks],
        }


def prepare(
    cfg: Config, *, progress: bool = False, fitted: Mapping[str, Any] | None = None
) -> Prepared:
    """Read, check, split, fit on train and decode everything for a new run.

    ``fitted`` (modality -> preprocessing state) is reused instead of fitting, for encoders
    pretrained on inputs preprocessed that way. ``data.label_fraction`` and
    ``data.train_missing`` (:mod:`fusiondx.data.protocols`) change the training cases last, so
    that preprocessing and the validation and test cases are those of the full data.
    """
    lab = label_cases(cfg)
    df, ids, split = lab.df, lab.ids, lab.split
    root = cfg.data.data_root
    train = split == "train"
    pre: dict[str, Preprocessor] = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, root)
        if fitted is not None and m.name in fitted:
            p.load_state(fitted[m.name])
            pre[m.name] = p
            continue
        present = modality_present(df, m)
        try:
            p.fit(df, present & train, ids)
        except DataError as err:
            raise err.at(file=cfg.data.manifest) from None
        pre[m.name] = p
    store = build_store(cfg, df, ids, pre, progress=progress)
    seed = cfg.seed if cfg.data.split.seed is None else cfg.data.split.seed
    if cfg.data.label_fraction < 1:
        groups, _ = patient_groups(df, cfg.data.patient_column, ids)
        groups = ids.to_numpy().astype(str) if groups is None else groups
        split = subsample_labels(split, lab.strata, groups, cfg.data.label_fraction, seed)
    if cfg.data.train_missing > 0:
        store.mask = remove_modalities(store.mask, split, cfg.data.train_missing, seed + 17)
    store.split = split
    store.targets = lab.targets
    store.notes = lab.notes + store.notes
    store.groups = case_groups(cfg, df, cfg.data.manifest)
    return Prepared(store, pre, lab.tasks)


def prepare_with_state(
    cfg: Config,
    state: dict[str, Any],
    manifest: Path,
    root: Path,
    *,
    need_labels: bool,
    progress: bool = False,
) -> Prepared:
    """Decode a (possibly new) manifest with preprocessing fitted by an earlier run."""
    df = read_manifest(manifest, sep=cfg.data.sep, id_column=cfg.data.id_column)
    check_manifest(df, cfg, manifest, need_labels=need_labels)
    ids = df[cfg.data.id_column].astype(str)
    tasks = [TaskInfo.from_dict(t) for t in state["tasks"]]
    pre: dict[str, Preprocessor] = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, root)
        p.load_state(state["preprocessors"][m.name])
        pre[m.name] = p
    cfg = cfg.model_copy(
        update={"data": cfg.data.model_copy(update={"manifest": manifest, "root": root})}
    )
    store = build_store(cfg, df, ids, pre, progress=progress)
    if need_labels:
        store.targets = task_targets(tasks, df, ids, manifest, cfg)
        store.groups = case_groups(cfg, df, manifest)
    store.split = np.full(len(df), "", dtype=object).astype(str)
    return Prepared(store, pre, tasks)


def build_store(
    cfg: Config,
    df: pd.DataFrame,
    ids: pd.Series,
    pre: dict[str, Preprocessor],
    *,
    progress: bool = False,
) -> CaseStore:
    """Decode every present modality cell once; collect every bad case before failing.

    A present cell that turns out to hold nothing (a report of whitespace) is marked missing in
    the mask; what decoding noticed (see ``Preprocessor.found``) becomes the store's notes, kept
    with the disk cache so that a run reading the cache says it too."""
    names = sorted(pre)
    present = {m.name: modality_present(df, m).copy() for m in cfg.modalities}  # blanks are unset
    arrays: dict[str, dict[str, Any]] = {}
    errors: list[DataError] = []
    notes: list[str] = []
    disk = cfg.data.cache == "disk"
    with _Progress(progress, total=sum(int(v.sum()) for v in present.values())) as bar:
        for name in names:
            p = pre[name]
            if not disk:
                arrays[name] = allocate(p, len(df))
                p.reset_found()
                p.transform(df, present[name], ids, arrays[name], errors, bar.advance)
                empty, said = p.found()
                found: dict[str, Any] = {"empty": [int(i) for i in empty], "notes": said}
            else:
                root = cache_root(cfg, name, p, p.iter_input_files(df, present[name], ids))
                if (root / "done").exists():
                    arrays[name] = dict(open_cached(root))
                    found = json.loads((root / "found.json").read_text())  # written before "done"
                    bar.advance(int(present[name].sum()))
                else:
                    decoded, found = decode_to_disk(
                        p,
                        df,
                        present[name],
                        ids,
                        root,
                        shard_mb=cfg.data.cache_shard_mb,
                        errors=errors,
                        advance=bar.advance,
                    )
                    arrays[name] = dict(decoded or {})
            present[name][np.asarray(found["empty"], dtype=np.int64)] = False
            notes += found["notes"]
    if errors:
        raise summarise(errors, cfg.data.manifest)
    mask = np.stack([present[n] for n in names], axis=1)
    return CaseStore(
        ids.to_numpy().astype(str),
        np.full(len(df), "").astype(str),
        names,
        arrays,
        mask,
        notes=notes,
    )


class _Progress:
    """A rich progress bar over decoded cases, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._p: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled and self.total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._p = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._p.start()
            self._task = self._p.add_task("decoding cases", total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()
