"""From manifest + config to decoded, cached arrays for every case, ready for batching.

``prepare(cfg)`` does everything before training: reads and checks the manifest, fixes the
class lists, splits cases, fits preprocessing on the training split only, and decodes every
file exactly once into stacked arrays (in memory, or memory-mapped ``.npy`` files on disk that a
later run with the same data and preprocessing reuses without decoding anything).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.data.checks import check_cells
from fusiondx.data.labels import encode_targets, split_strata
from fusiondx.data.manifest import check_manifest, modality_present, read_manifest, some_cases
from fusiondx.data.preprocessors import Preprocessor, make_preprocessor
from fusiondx.data.splits import check_splits, make_splits, patient_groups, splits_from_column
from fusiondx.errors import DataError, summarise
from fusiondx.tasks import TaskInfo, infer_task, task_type
from fusiondx.types import ModalitySpec


@dataclass
class CaseStore:
    """Every case's decoded inputs, presence mask, targets and split, as stacked arrays."""

    ids: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str: train | val | test | '' (no split, e.g. prediction)
    modalities: list[str]  # sorted
    inputs: dict[str, dict[str, np.ndarray]]  # modality -> {array name: (N, ...)}
    mask: np.ndarray  # (N, M) bool
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # task -> (N, ...)
    notes: list[str] = field(default_factory=list)  # warnings for the user: counts, a few case ids

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


@dataclass
class Labelled:
    """A new run's cases before any file is decoded: manifest, ids, tasks, targets, split."""

    df: pd.DataFrame
    ids: pd.Series
    tasks: list[TaskInfo]
    targets: dict[str, np.ndarray]
    split: np.ndarray
    notes: list[str] = field(default_factory=list)


def label_cases(cfg: Config) -> Labelled:
    """Read and check the manifest, fix the tasks, split the cases and encode the targets."""
    path = cfg.data.manifest
    df = read_manifest(path, sep=cfg.data.sep, id_column=cfg.data.id_column)
    problems: list[DataError] = []
    check_cells(df, cfg, path, problems)  # every problem in the cells, before any file is read
    if problems:
        raise summarise(problems, path)
    ids = df[cfg.data.id_column].astype(str)
    tasks = [infer_task(t, df, cfg) for t in cfg.tasks]
    strata = _strata(tasks[0], df, ids, path, cfg)
    split = assign_splits(cfg, df, ids, strata, task_type(tasks[0]).stratum_names(tasks[0]))
    try:
        tasks = [
            task_type(t).fit(t, df, split == "train", tc)
            for t, tc in zip(tasks, cfg.tasks, strict=True)
        ]
    except DataError as err:
        raise err.at(file=path) from None
    targets = _targets(tasks, df, ids, path, cfg)
    _check_train_classes(tasks, targets, split)
    _check_val_classes(tasks, targets, split, cfg)
    return Labelled(df, ids, tasks, targets, split, _patient_notes(cfg, df, ids))


def _patient_notes(cfg: Config, df: pd.DataFrame, ids: pd.Series) -> list[str]:
    col = cfg.data.patient_column
    _, blank = patient_groups(df, col, ids)
    if not blank:
        return []
    n = len(blank)
    return [
        f"{n} case{'s have' if n > 1 else ' has'} no {col}: each is treated as its own patient "
        f"(e.g. {some_cases(blank)}); fill {col} where cases share a patient, so that they stay "
        "in one split"
    ]


def prepare(cfg: Config, *, progress: bool = False) -> Prepared:
    """Read, check, split, fit on train and decode everything for a new run."""
    lab = label_cases(cfg)
    df, ids, split = lab.df, lab.ids, lab.split
    root = cfg.data.data_root
    train = split == "train"
    pre: dict[str, Preprocessor] = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, root)
        present = modality_present(df, m)
        try:
            p.fit(df, present & train, ids)
        except DataError as err:
            raise err.at(file=cfg.data.manifest) from None
        pre[m.name] = p
    store = build_store(cfg, df, ids, pre, progress=progress)
    store.split = split
    store.targets = lab.targets
    store.notes = lab.notes + store.notes
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
        store.targets = _targets(tasks, df, ids, manifest, cfg)
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
    arrays: dict[str, dict[str, np.ndarray]] = {}
    errors: list[DataError] = []
    notes: list[str] = []
    disk = cfg.data.cache == "disk"
    with _Progress(progress, total=sum(int(v.sum()) for v in present.values())) as bar:
        for name in names:
            p = pre[name]
            root = (
                _cache_root(cfg, name, p, p.input_files(df, present[name], ids)) if disk else None
            )
            if root is not None and (root / "done").exists():
                arrays[name] = {
                    k: np.load(root / f"{k or 'x'}.npy", mmap_mode="r") for k in p.shapes()
                }
                found = json.loads((root / "found.json").read_text())  # written before "done"
                bar.advance(int(present[name].sum()))
            else:
                tmp = _allocate(p, len(df), root)
                p.transform(df, present[name], ids, tmp, errors, bar.advance)
                empty, said = p.found()
                found = {"empty": [int(i) for i in empty], "notes": said}
                if root is not None and errors:
                    for a in tmp.values():
                        os.remove(a.filename)  # type: ignore[attr-defined]
                arrays[name] = (
                    _publish(tmp, root, found) if root is not None and not errors else tmp
                )
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


def _allocate(p: Preprocessor, n: int, root: Path | None) -> dict[str, np.ndarray]:
    """Arrays to decode into: in memory, or memory-mapped files private to this process."""
    out: dict[str, np.ndarray] = {}
    for key, (shape, dtype) in p.shapes().items():
        if root is None:
            out[key] = np.zeros((n, *shape), dtype=dtype)
        else:
            f = root / f"{key or 'x'}.{os.getpid()}.tmp.npy"
            out[key] = np.lib.format.open_memmap(f, mode="w+", dtype=dtype, shape=(n, *shape))
    return out


def _publish(
    arrays: dict[str, np.ndarray], root: Path, found: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Move a finished decode into the shared cache in one rename per file.

    Several trainings of a study may decode the same modality at once; each writes its own
    files and renames them into place, so no process ever reads a file another is writing.
    """
    out = {}
    for key, a in arrays.items():
        a.flush()  # type: ignore[attr-defined]
        final = root / f"{key or 'x'}.npy"
        os.replace(a.filename, final)  # type: ignore[attr-defined]
        out[key] = np.load(final, mmap_mode="r")
    found_file = root / f"found.{os.getpid()}.tmp.json"
    found_file.write_text(json.dumps(found))
    os.replace(found_file, root / "found.json")
    (root / "done").write_text("ok")
    return out


# Bytes of a file's start and of its end hashed into the cache key; a file up to twice this is
# hashed whole. Bounded so that keying a large cohort costs a stat and a small read per file.
_HASHED_BYTES = 8192
# Changes with what a cache folder holds (2: found.json, the blank cells and warnings of decoding).
_CACHE_FORMAT = b"fusiondx-cache-2\0"


def _cache_root(cfg: Config, name: str, p: Preprocessor, files: Sequence[Path]) -> Path:
    """One folder per modality, keyed by the manifest's bytes, the data root, the modality's
    settings and fitted state, and the identity of every file it reads (resolved path, size,
    modification time, and a hash of its start and end: the whole of a small file), so that a
    replaced or damaged file is decoded again while runs on any subset of modalities share the
    decoded arrays."""
    h = hashlib.sha256(_CACHE_FORMAT + cfg.data.manifest.read_bytes())
    h.update(str(cfg.data.data_root).encode())
    h.update(
        json.dumps(
            [cfg.modality(name).model_dump(mode="json"), p.state()], sort_keys=True, default=str
        ).encode()
    )
    for f in files:
        h.update(_file_identity(f))
    base = cfg.data.cache_dir or (cfg.output_dir / ".cache")
    root = base / f"{name}-{h.hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _file_identity(path: Path) -> bytes:
    full = path.resolve()
    try:
        st = full.stat()
        with full.open("rb") as fh:
            content = fh.read(2 * _HASHED_BYTES)
            if st.st_size > 2 * _HASHED_BYTES:
                fh.seek(-_HASHED_BYTES, os.SEEK_END)
                content = content[:_HASHED_BYTES] + fh.read()
    except OSError as exc:  # missing or unreadable: decoding says so, and nothing is published
        return f"{full}\0{type(exc).__name__}\n".encode()
    digest = hashlib.blake2b(content, digest_size=16).hexdigest()
    return f"{full}\0{st.st_size}\0{st.st_mtime_ns}\0{digest}\n".encode()


def _targets(
    tasks: list[TaskInfo], df: pd.DataFrame, ids: pd.Series, path: Path, cfg: Config
) -> dict[str, np.ndarray]:
    out = {}
    for t in tasks:
        try:
            out[t.name] = encode_targets(t, df, ids, cfg)
        except DataError as err:
            raise (err.at(file=path) if err.file is None else err) from None
    return out


def _strata(
    task: TaskInfo, df: pd.DataFrame, ids: pd.Series, path: Path, cfg: Config
) -> np.ndarray:
    """What the split is stratified on: the first task's class, or (other tasks) whether a case
    has a lesion / an event, read from the label cells without decoding any file."""
    try:
        return split_strata(task, df, ids, cfg)
    except DataError as err:
        raise (err.at(file=path) if err.file is None else err) from None


def assign_splits(
    cfg: Config,
    df: pd.DataFrame,
    ids: pd.Series,
    strata: np.ndarray,
    names: dict[str, str] | None = None,
) -> np.ndarray:
    """train / val / test per case: from the split column, or made (stratified on ``strata``,
    grouped by patient) as ``data.split`` says; ``names`` (see ``stratum_names``) are the strata
    every made split must hold."""
    patients, _ = patient_groups(df, cfg.data.patient_column, ids)
    if cfg.data.split.column:
        split = splits_from_column(df, cfg.data.split.column, cfg.data.id_column)
    else:
        sc = cfg.data.split
        split = make_splits(
            strata,
            sc.fractions,
            cfg.seed if sc.seed is None else sc.seed,
            groups=patients,
            stratify=sc.stratify,
            folds=sc.folds,
            fold=sc.fold,
            names=names,
        )
    check_splits(split, ids, patients)
    return split


def _check_train_classes(
    tasks: list[TaskInfo], targets: dict[str, np.ndarray], split: np.ndarray
) -> None:
    train = split == "train"
    for t in tasks:
        task_type(t).check_train(t, targets[t.name][train])


def _check_val_classes(
    tasks: list[TaskInfo], targets: dict[str, np.ndarray], split: np.ndarray, cfg: Config
) -> None:
    """The monitored binary or multiclass task's validation split needs two classes when early
    stopping and the best checkpoint follow a ranking metric (AUROC, the default): with one
    class it is undefined, and training would keep its first epoch."""
    es = cfg.train.early_stopping
    name = es.monitor if es is not None and es.monitor else "auroc"
    task_name, _, monitor = name.rpartition("/")
    t = next((x for x in tasks if x.name == task_name), tasks[0])
    if not task_type(t).class_indices or monitor not in ("auroc", "auprc"):
        return
    y = targets[t.name].astype(int)
    val = y[split == "val"]
    if len(val) == 0 or len(np.unique(val)) >= 2:
        return
    counts = "; ".join(
        f"{s}: "
        + ", ".join(f"'{c}' {int(np.sum(y[split == s] == k))}" for k, c in enumerate(t.classes))
        for s in ("train", "val", "test")
    )
    how = f"column '{cfg.data.split.column}'" if cfg.data.split.column else "the made split"
    raise DataError(
        f"The validation split of task '{t.name}' holds a single class (cases per split and class, "
        f"from {how}: {counts}), so validation {monitor.upper()}, which early stopping and the best "
        "checkpoint follow, is undefined.",
        column=cfg.data.split.column or t.label[0],
        fix="put cases of every class in val (fix the split column, or let FusionDx split), or set "
        "train.early_stopping.monitor: loss",
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
