"""What every public-dataset adapter shares: output paths, skipped records, config writing.

An adapter reads a dataset in its official layout and writes three files into one folder: the
manifest (one row per case), a ready-to-run YAML config next to it, and ``skipped.csv`` listing
every record that could not be used with the reason. One bad record never stops an adapter; a
folder without the dataset's layout does, with a :class:`DataError` that says what is missing.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import yaml

from fusiondx.errors import DataError

T = TypeVar("T")


@dataclass
class Skipped:
    """Records left out, each with its id and the reason, in the order they were met."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, record_id: object, reason: str) -> None:
        self.rows.append((str(record_id), " ".join(str(reason).split())))

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, path: Path, id_name: str) -> None:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([id_name, "reason"])
            writer.writerows(self.rows)


@dataclass
class PreparedDataset:
    """What an adapter wrote: paths, counts and the notes worth telling the user."""

    dataset: str
    manifest: Path
    config: Path
    skipped_file: Path
    cases: int
    skipped: list[tuple[str, str]]
    label_counts: dict[str, int]
    notes: list[str]


@dataclass(frozen=True)
class OutputPaths:
    folder: Path
    manifest: Path
    config: Path
    skipped: Path


def output_paths(out: str | Path, dataset: str, *, inputs: Path | None = None) -> OutputPaths:
    """``out`` is a folder (manifest.csv goes inside) or a manifest path ending in ``.csv``.

    The config is ``<dataset>.yaml`` and ``skipped.csv`` sits beside the manifest. Writing into
    the dataset's own folder is refused so that the inputs are never modified.
    """
    out = Path(out).expanduser()
    if out.suffix.lower() == ".csv":
        folder, manifest = out.parent, out
    else:
        folder, manifest = out, out / "manifest.csv"
    folder = folder.resolve()
    if inputs is not None and folder == Path(inputs).resolve():
        raise DataError(
            "The output folder is the dataset's own folder.",
            file=folder,
            fix="pass --out a separate folder, e.g. ../prepared/<dataset>",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return OutputPaths(
        folder, folder / manifest.name, folder / f"{dataset}.yaml", folder / "skipped.csv"
    )


def require_file(path: Path, dataset: str, layout: str) -> Path:
    """``path`` must exist; otherwise a layout error that shows the expected layout."""
    if not path.exists():
        raise DataError(
            f"This folder does not look like {dataset}: '{path.name}' is missing.",
            file=path,
            fix=f"pass the folder of the official download, which holds {layout}",
        )
    return path


def require_columns(frame: pd.DataFrame, columns: Iterable[str], file: Path, fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"The table lacks the column(s) {missing}; it has {list(frame.columns)[:12]}.",
            file=file,
            column=missing[0],
            fix=fix,
        )


def read_table(path: Path, **kwargs: Any) -> pd.DataFrame:
    """A CSV (plain or gzip) as pandas reads it; a parse failure becomes a DataError."""
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"The table cannot be read ({' '.join(str(exc).split())}).",
            file=path,
            fix="re-download the file; it should be a comma-separated table with a header row",
        ) from None


def track(items: Iterable[T], total: int | None, label: str, enabled: bool) -> Iterator[T]:
    """Iterate, with a rich progress bar when ``enabled``."""
    if not enabled:
        yield from items
        return
    from rich.progress import track as rich_track

    yield from rich_track(items, total=total, description=label)


@contextlib.contextmanager
def progress_bar(enabled: bool, label: str, total: int | None) -> Iterator[Callable[[], None]]:
    """A rich progress bar for work that is not a simple loop; yields ``advance()``."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
        bar.update(task, completed=bar.tasks[0].total or bar.tasks[0].completed)


def write_manifest(frame: pd.DataFrame, path: Path) -> None:
    # Empty cells mean "missing" to FusionDx, so NaN is written as an empty cell.
    frame.to_csv(path, index=False, lineterminator="\n", na_rep="")


def write_config(raw: dict[str, Any], path: Path, header: list[str]) -> None:
    """Write the YAML with a comment header and check that FusionDx loads it."""
    from fusiondx.config import load_config

    text = "".join(f"# {line}\n" for line in header) + yaml.safe_dump(raw, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    load_config(path)  # a config the adapter writes must always validate


def multilabel_task(name: str, classes: list[str]) -> dict[str, Any]:
    """A task over 0/1 label columns; with a single column it is a binary task on that column,
    because FusionDx reads a one-column multilabel label as ``;``-separated class names."""
    if len(classes) == 1:
        return {"name": name, "label": classes[0], "classes": ["0", "1"]}
    return {"name": name, "label": list(classes), "type": "multilabel", "classes": list(classes)}


def multilabel_counts(frame: pd.DataFrame, classes: list[str]) -> dict[str, int]:
    return {c: int(pd.to_numeric(frame[c]).sum()) for c in classes}


def simulate_split(config: Path, manifest: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The split FusionDx will make for this config, with the first task's targets.

    The store's own split from the label cells alone, so an adapter can check before any
    training that every split holds positives.

    Returns:
        ``(split (N,), targets (N,) or (N, K), classes)``.
    """
    from fusiondx.config import load_config
    from fusiondx.data.labelling import assign_splits
    from fusiondx.data.labels import encode_targets
    from fusiondx.data.manifest import read_manifest
    from fusiondx.tasks import infer_task, task_type

    cfg = load_config(config)
    df = read_manifest(manifest)
    ids = df[cfg.data.id_column].astype(str)
    info = infer_task(cfg.tasks[0], df, cfg)
    y = encode_targets(info, df, ids, cfg)
    tt = task_type(info)
    with warnings.catch_warnings():  # scikit-learn's small-class warnings say nothing new here
        warnings.simplefilter("ignore", UserWarning)
        split = assign_splits(cfg, df, ids, tt.stratification_key(info, y), tt.stratum_names(info))
    return split, y, info.classes


def split_gaps(split: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> list[str]:
    """'<split> has no <class>' for every split lacking a positive (or, binary, a negative)."""
    gaps = []
    for s in ("train", "val", "test"):
        sel = split == s
        if y.ndim == 1:
            for k, c in enumerate(classes):
                if not np.any(y[sel] == k):
                    gaps.append(f"{s} has no '{c}' case")
        else:
            gaps += [
                f"{s} has no '{c}' case" for k, c in enumerate(classes) if not np.any(y[sel, k] > 0)
            ]
    return gaps


def find_split_seed(
    config: Path, manifest: Path, *, fix: str, strict: bool = True, start: int = 0, tries: int = 20
) -> tuple[int, list[str]]:
    """A split seed (written into the config) whose made split has every class in every split.

    Only label counts decide, never a model's score. ``strict=False`` (multi-label tasks with rare
    classes) accepts the seed with the fewest gaps as long as train has every class, which fit
    needs. Returns ``(seed, gaps the chosen seed leaves)``.
    """
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    tried: list[tuple[int, list[str]]] = []
    for seed in range(start, start + tries):
        raw["data"]["split"]["seed"] = seed
        config.write_text(_with_header(config, raw), encoding="utf-8")
        try:
            gaps = split_gaps(*simulate_split(config, manifest))
        except DataError as err:  # the store refuses this seed's split: a class cannot be held out
            gaps = [f"split refused: {err.what}"]
        if not gaps:
            return seed, []
        tried.append((seed, gaps))
    usable = [(len(g), s, g) for s, g in tried if not any(x.startswith("train ") for x in g)]
    if not strict and usable:
        _, seed, gaps = min(usable)
        raw["data"]["split"]["seed"] = seed
        config.write_text(_with_header(config, raw), encoding="utf-8")
        return seed, gaps
    raw["data"]["split"]["seed"] = start  # leave the config as a starting point for a hand-set seed
    config.write_text(_with_header(config, raw), encoding="utf-8")
    raise DataError(
        f"No split seed from {start} to {start + tries - 1} puts every class in train, val and test "
        f"(seed {start}: {'; '.join(tried[0][1])}). There are too few positive cases or patients.",
        file=manifest,
        fix=fix,
    )


def _with_header(config: Path, raw: dict[str, Any]) -> str:
    header = "".join(
        line + "\n"
        for line in config.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    return header + yaml.safe_dump(raw, sort_keys=False)


def finish(
    dataset: str,
    paths: OutputPaths,
    frame: pd.DataFrame,
    skipped: Skipped,
    id_name: str,
    label_counts: dict[str, int],
    notes: list[str],
    about: list[str],
) -> PreparedDataset:
    """Write skipped.csv and a README.md (provenance, licence, counts, notes) next to the manifest."""
    skipped.write(paths.skipped, id_name)
    lines = [
        f"# {dataset}: prepared for FusionDx",
        "",
        *[p for a in about for p in (a, "")],
        f"- cases written: {len(frame)} (`{paths.manifest.name}`)",
        f"- records skipped: {len(skipped)} (`{paths.skipped.name}`, with the reason for each)",
        "- labels: " + ", ".join(f"{k} {v}" for k, v in label_counts.items()),
        f"- config: `{paths.config.name}`; next: `fusiondx study {paths.config.name}`",
    ]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    (paths.folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PreparedDataset(
        dataset,
        paths.manifest,
        paths.config,
        paths.skipped,
        len(frame),
        list(skipped.rows),
        label_counts,
        notes,
    )
