"""MedMNIST v2 ``.npz`` files (Yang et al., 2023) -> PNG files, a FusionDx manifest and config.

Layout read: one ``<name>mnist[_<size>].npz`` with ``{train,val,test}_images`` (``(N, H, W)``
grey or ``(N, H, W, 3)`` colour, uint8) and ``{train,val,test}_labels`` (``(N, 1)`` class ids, or
``(N, K)`` 0/1 for multi-label sets such as ChestMNIST). The path may be the file or a folder
holding exactly one. Each image becomes ``images/<split>/<split>_<index>.png``; the manifest keeps
the file's own split in ``split``. The task is binary (two classes), multiclass (more) or
multilabel (``(N, K)`` labels), with class names where the set is known.

Example:
    >>> prepare_medmnist("../shared/data/medmnist_pneumonia", "../prepared/pneumonia")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from fusiondx.datasets._adapter import (
    PreparedDataset,
    Skipped,
    finish,
    multilabel_task,
    output_paths,
    track,
    write_config,
    write_manifest,
)
from fusiondx.errors import DataError
from fusiondx.registry import register_adapter

SPLITS = ("train", "val", "test")
# Class names of the label ids in the MedMNIST v2 files (medmnist's INFO); other sets get class_<k>.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "pneumoniamnist": ("normal", "pneumonia"),
    "breastmnist": ("malignant", "normal_or_benign"),
    "octmnist": ("choroidal_neovascularization", "diabetic_macular_edema", "drusen", "normal"),
    "chestmnist": (
        "atelectasis",
        "cardiomegaly",
        "effusion",
        "infiltration",
        "mass",
        "nodule",
        "pneumonia",
        "pneumothorax",
        "consolidation",
        "edema",
        "emphysema",
        "fibrosis",
        "pleural",
        "hernia",
    ),
}
LAYOUT = "a MedMNIST .npz with train_images, train_labels, val_images, val_labels, test_images, test_labels"
ABOUT = [
    "MedMNIST v2: CC BY 4.0 for the collection (each source dataset keeps its own licence; "
    "PneumoniaMNIST derives from Kermany et al., 2018, CC BY 4.0).",
    "Cite: Yang J, Shi R, Wei D, et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D "
    "biomedical image classification. Scientific Data 10, 41 (2023).",
]


@register_adapter(
    "medmnist",
    aliases=("pneumoniamnist",),
    example="../shared/data/medmnist_pneumonia --out ../prepared/pneumonia",
)
def prepare_medmnist(
    path: str | Path, out: str | Path, *, progress: bool = False
) -> PreparedDataset:
    """MedMNIST 2D .npz -> PNGs; binary, multiclass or multilabel from the label shape.

    Writes PNGs, the manifest, ``medmnist.yaml`` and ``skipped.csv`` into ``out``.

    Args:
        path: a MedMNIST ``.npz`` file, or a folder holding exactly one.
        out: output folder, or the manifest's path (``.csv``).
        progress: show a progress bar while images are written.
    """
    file = _find_npz(Path(path).expanduser().resolve())
    paths = output_paths(out, "medmnist", inputs=file.parent)
    arrays = _load(file)
    set_name = re.sub(r"_\d+$", "", file.stem.lower())
    labels = {s: arrays[f"{s}_labels"] for s in SPLITS}
    multilabel = labels["train"].ndim == 2 and labels["train"].shape[1] > 1
    names = CLASS_NAMES.get(set_name, ())
    # A known set fixes the class count, so a stray label id is reported instead of becoming a class.
    n_classes = (
        labels["train"].shape[1]
        if multilabel
        else len(names)
        or int(max(np.nanmax(labels[s]) if labels[s].size else 0 for s in SPLITS)) + 1
    )
    if len(names) != n_classes:
        names = tuple(f"class_{k}" for k in range(n_classes))
    skipped, rows = Skipped(), []
    for s in SPLITS:
        images, y = arrays[f"{s}_images"], labels[s].reshape(len(labels[s]), -1)
        folder = paths.folder / "images" / s
        folder.mkdir(parents=True, exist_ok=True)
        width = max(5, len(str(len(images))))
        for i in track(range(len(images)), len(images), f"writing {s} images", progress):
            cid = f"{s}_{i:0{width}d}"
            row = _label_row(y[i], names, multilabel)
            if isinstance(row, str):
                skipped.add(cid, row)
                continue
            rel = f"images/{s}/{cid}.png"
            Image.fromarray(images[i]).save(paths.folder / rel, format="PNG")
            rows.append({"case_id": cid, "split": s, "image": rel, **row})
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise DataError(
            "No image of the file could be used; see skipped.csv.",
            file=file,
            fix="check the labels arrays (class ids, or 0/1 per class)",
        )
    kind = "multilabel" if multilabel else ("binary" if n_classes == 2 else "multiclass")
    size = list(arrays["train_images"].shape[1:3])
    channels = 3 if arrays["train_images"].ndim == 4 else 1
    write_manifest(frame, paths.manifest)
    write_config(
        _config(paths.manifest.name, set_name, kind, list(names), size, channels),
        paths.config,
        [
            f"MedMNIST {file.name} ({kind}); written by `fusiondx prepare medmnist`.",
            "Split: the file's own train/val/test. Cite Yang et al., Scientific Data 2023.",
            "Next: fusiondx validate <this file>; fusiondx fit <this file>",
        ],
    )
    counts = (
        {n: int(frame[n].sum()) for n in names}
        if multilabel
        else {n: int((frame["label"] == n).sum()) for n in names}
    )
    notes = [
        f"image only: the study compares seeds of one image model (there is nothing to fuse); "
        f"{len(frame)} images of {size[0]}x{size[1]} pixels, {channels} channel(s)"
    ]
    per_split = frame.groupby("split")["label"].value_counts().unstack() if not multilabel else None
    if per_split is not None and per_split.shape[1] == 2 and (per_split.nunique(axis=1) == 1).all():
        notes.append(
            "classes are exactly balanced in every split (a class-balanced undersample); the "
            "official PneumoniaMNIST is about 74 % pneumonia in train and 62 % in test, so "
            "AUROC carries over but accuracy, F1 and calibration do not"
        )
    return finish("medmnist", paths, frame, skipped, "case_id", counts, notes, ABOUT)


def _find_npz(path: Path) -> Path:
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(
                "A MedMNIST file must be a .npz archive.", file=path, fix=f"pass {LAYOUT}"
            )
        return path
    found = sorted(path.glob("*.npz")) if path.is_dir() else []
    if len(found) != 1:
        what = "does not exist" if not path.exists() else f"holds {len(found)} .npz files"
        raise DataError(
            f"The MedMNIST folder {what}; one .npz is needed.",
            file=path,
            fix=f"pass the .npz file itself ({', '.join(f.name for f in found[:5]) or LAYOUT})",
        )
    return found[0]


def _load(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # a truncated zip, a pickled object array, ...
        raise DataError(
            f"The .npz archive cannot be read ({' '.join(str(exc).split())}).",
            file=file,
            fix="re-download the file",
        ) from None
    missing = [f"{s}_{p}" for s in SPLITS for p in ("images", "labels") if f"{s}_{p}" not in arrays]
    if missing:
        raise DataError(
            f"The archive lacks {missing}; it holds {sorted(arrays)}.",
            file=file,
            fix=f"pass {LAYOUT}",
        )
    for s in SPLITS:
        img, lab = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        colour = img.ndim == 4 and img.shape[-1] == 3
        if not (img.ndim == 3 or colour):
            raise DataError(
                f"{s}_images has shape {img.shape}: not a 2D set (3D MedMNIST volumes are not "
                "supported here).",
                file=file,
                fix="use a 2D MedMNIST set",
            )
        if img.dtype != np.uint8:
            raise DataError(
                f"{s}_images holds {img.dtype}, not uint8.",
                file=file,
                fix="use the MedMNIST file as downloaded (uint8 pixels)",
            )
        if len(lab) != len(img):
            raise DataError(
                f"{s}_labels has {len(lab)} rows for {len(img)} images.",
                file=file,
                fix="re-download the file",
            )
    return arrays


def _label_row(y: np.ndarray, names: tuple[str, ...], multilabel: bool) -> dict[str, Any] | str:
    """The manifest label cells of one image, or the reason it cannot be used."""
    if multilabel:
        if not np.isin(y, (0, 1)).all():
            return f"labels {y.tolist()} are not all 0 or 1"
        return {n: int(v) for n, v in zip(names, y, strict=True)}
    v = y[0] if y.size == 1 else None
    if v is None or v != v or v < 0 or v >= len(names) or v != int(v):
        return f"label {y.tolist()} is not a class id 0-{len(names) - 1}"
    return {"label": names[int(v)]}


def _config(
    manifest: str, set_name: str, kind: str, names: list[str], size: list[int], channels: int
) -> dict[str, Any]:
    task = (
        multilabel_task("diagnosis", names)
        if kind == "multilabel"
        else {"name": "diagnosis", "label": "label", "type": kind, "classes": names}
    )
    return {
        "name": f"medmnist_{set_name}",
        "seed": 0,
        "output_dir": "runs",
        "data": {"manifest": manifest, "id_column": "case_id", "split": {"column": "split"}},
        "modalities": [
            {
                "name": "image",
                "kind": "image",
                "column": "image",
                "preprocessing": {"size": size, "channels": channels},
                "encoder": {"name": "cnn"},
            }
        ],
        "fusion": {"name": "concat", "dim": 64},
        "tasks": [task],
        "train": {
            "epochs": 10,
            "batch_size": 64,
            "lr": 0.001,
            "early_stopping": {"monitor": "auroc", "patience": 3},
        },
        "study": {
            "strategies": ["concat"],
            "seeds": 3,
            "ablation": False,
            "robustness": False,
            "jobs": 2,
        },
    }
