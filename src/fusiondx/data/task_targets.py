"""Targets of tasks beyond classification: regression, survival, boxes, masks, report text.

Per case, as stored (N rows, in manifest order):

- ``regression``: float32 (N,), NaN where the label cell is empty (left out of loss and metrics).
- ``survival``: float32 (N, 2): time (> 0) and event (1 observed, 0 censored).
- ``box``: float32 (N, 4), normalised ``x0/W, y0/H, x1/W, y1/H`` of the image the box belongs to
  (x to the right, y down, the top-left pixel's corner at 0, x1/y1 exclusive, so a tight box of
  pixels ``[y0:y1, x0:x1]`` maps to the same fractions at any resolution); NaN rows where a case
  has no box (no lesion, or no image).
- ``mask``: uint8 (N, 1, *size): 0/1 at the image modality's preprocessed size; a case without
  its image is 255 everywhere (ignored); an empty cell with an image means "no lesion" (zeros).
- ``text``: int64 (N, L): word ids ``[BOS] w1 ... [EOS]`` padded with 0; all zeros where the
  case has no reference text (ignored).

Boxes and masks are given in the pixel grid of the original image file, which is read to know
its size; they follow the image through resizing exactly, because resizing keeps the whole field
of view (no crop).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusiondx.data.manifest import line_of, resolve_path
from fusiondx.errors import ConfigError, DataError

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig
    from fusiondx.data.targets import TaskInfo

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
# Task types whose label cell may be empty: no lesion, no reference text, value not measured.
MAY_BE_EMPTY = ("regression", "box", "mask", "text")
_SURVIVAL_BINS = 10


def task_type_of(task: TaskConfig) -> str | None:
    """The type of a non-classification head's task (None for classification heads)."""
    from fusiondx.data.targets import CLASSIFICATION_TYPES
    from fusiondx.registry import HEADS
    types = tuple(HEADS.get(task.head).meta.get("tasks", CLASSIFICATION_TYPES))
    return None if set(types) & set(CLASSIFICATION_TYPES) else types[0]


def infer_other_task(task: TaskConfig, ttype: str, df: pd.DataFrame, cfg: Config | None) -> TaskInfo:
    """Check the label columns and, for boxes and masks, the image modality they belong to."""
    from fusiondx.data.targets import TaskInfo

    cols = (task.label,) if isinstance(task.label, str) else tuple(task.label)
    want = 2 if ttype == "survival" else 1
    if len(cols) != want:
        shown = "[time column, event column]" if ttype == "survival" else "one column name"
        raise ConfigError(f"Task '{task.name}' ({task.head}) takes {shown} as label, got {list(cols)}.",
                          fix=f"set tasks[{task.name}].label to {shown}")
    image = None
    if ttype in ("box", "mask"):
        image = image_modality(task, cfg)
    return TaskInfo(task.name, ttype, (), cols, image=image)


def image_modality(task: TaskConfig, cfg: Config | None) -> str:
    """The image modality a box or mask task's labels are drawn on (``tasks[].image``, or the only one)."""
    if cfg is None:
        raise ConfigError(f"Task '{task.name}' needs the config to find its image modality.")
    images = [m.name for m in cfg.modalities if m.kind == "image"]
    if task.image is not None:
        if task.image not in images:
            raise ConfigError(f"tasks[{task.name}].image is '{task.image}', which is not an image modality.",
                              fix=f"name one of the image modalities: {', '.join(images) or '(none configured)'}")
        name = task.image
    elif len(images) == 1:
        name = images[0]
    else:
        raise ConfigError(
            f"Task '{task.name}' ({task.head}) needs an image modality, and the config has "
            f"{len(images) or 'no'} image modalities{': ' + ', '.join(images) if images else ''}.",
            fix=f"set tasks[{task.name}].image to the modality the {'boxes' if task.head == 'localization' else 'masks'} belong to"
            if images else "add the image modality the boxes or masks belong to")
    m = cfg.modality(name)
    a = m.preprocessing.augment  # type: ignore[union-attr]
    if a.flip or a.rotate or a.scale:
        raise ConfigError(
            f"Modality '{name}' is augmented with flips/rotations/scaling, which would move lesions "
            f"away from the boxes or masks of task '{task.name}'.",
            fix=f"turn off modalities[{name}].preprocessing.augment for localization/segmentation "
                "(augmenting images and their targets together is not supported yet)")
    return name


def split_key(info: TaskInfo, df: pd.DataFrame) -> np.ndarray:
    """Per-case strata for splitting, read straight from the label cells (no file is read)."""
    col = df[info.label[0]]
    if info.type in ("box", "mask"):
        return col.notna().map({True: "lesion", False: "none"}).to_numpy().astype(str)
    if info.type == "survival":
        return df[info.label[1]].astype(str).str.strip().to_numpy().astype(str)
    if info.type == "regression":
        v = pd.to_numeric(col, errors="coerce")
        q = pd.qcut(v.rank(method="first"), 4, labels=False) if v.notna().sum() >= 8 else v * 0
        return q.fillna(-1).astype(int).astype(str).to_numpy()
    return np.full(len(df), "all")


def other_stratification_key(info: TaskInfo, y: np.ndarray) -> np.ndarray:
    """Strata from encoded targets (for callers that have them rather than the manifest)."""
    if info.type == "box":
        return np.where(np.isfinite(y).all(axis=1), "lesion", "none")
    if info.type == "mask":
        flat = y.reshape(len(y), -1)
        return np.where((flat == 1).any(axis=1), "lesion", "none")
    if info.type == "survival":
        return y[:, 1].astype(int).astype(str)
    return np.full(len(y), "all")


def fit_task(info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: TaskConfig) -> TaskInfo:
    """What a task learns from the training cases: a report vocabulary, survival time bins."""
    from dataclasses import replace

    if info.type == "text":
        texts = [_clean(str(v), task.text.lowercase) for v in df[info.label[0]][train].dropna()]
        if not texts:
            raise DataError(f"No training case of task '{info.name}' has a reference text.",
                            column=info.label[0], fix="fill the text column for training cases")
        tok = _word_tokenizer(texts, task.text.vocab_size, task.text.min_frequency)
        return replace(info, state={"tokenizer": tok.to_str(), "max_length": task.text.max_length,
                                    "lowercase": task.text.lowercase})
    if info.type == "regression":
        y = pd.to_numeric(df[info.label[0]][train], errors="coerce").dropna().to_numpy(np.float64)
        if len(y) < 2:
            raise DataError(f"Fewer than two training cases of task '{info.name}' have a value.",
                            column=info.label[0], fix="fill the target column for training cases")
        return replace(info, state={"target_mean": float(y.mean()), "target_std": float(y.std()) or 1.0})
    if info.type == "survival":
        time, event = _survival_columns(info, df, pd.Series(np.arange(len(df)).astype(str)))
        t = time[train & (event > 0)]
        edges = np.unique(np.quantile(t, np.linspace(0, 1, _SURVIVAL_BINS + 1)[1:-1])) if len(t) else []
        return replace(info, state={"bin_edges": [float(e) for e in edges]})
    return info


def encode_other(info: TaskInfo, df: pd.DataFrame, ids: pd.Series, cfg: Config | None) -> np.ndarray:
    if info.type == "regression":
        return _regression(info, df, ids)
    if info.type == "survival":
        return np.stack(_survival_columns(info, df, ids), axis=1).astype(np.float32)
    if info.type == "text":
        return encode_texts(info, df[info.label[0]])
    assert cfg is not None and info.image is not None
    image = cfg.modality(info.image)
    root = cfg.data.data_root
    if info.type == "box":
        return _boxes(info, df, ids, image.column, root)  # type: ignore[union-attr]
    return _masks(info, df, ids, image, root)


# -------------------------------------------------------------------------------- regression


def _regression(info: TaskInfo, df: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    col = info.label[0]
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero((values.isna() & raw.notna()).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(f"The regression target '{raw.iloc[i]}' is not a number.", row=line_of(i),
                        column=col, case_id=str(ids.iloc[i]), fix="write a number, or leave the cell empty")
    if values.notna().sum() < 2:
        raise DataError(f"Task '{info.name}' has fewer than two cases with a value.", column=col,
                        fix="fill the target column")
    return values.to_numpy(np.float32)


# -------------------------------------------------------------------------------- survival


def _survival_columns(info: TaskInfo, df: pd.DataFrame, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    tcol, ecol = info.label
    time = pd.to_numeric(df[tcol], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(time) | (time <= 0))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"The survival time '{df[tcol].iloc[i]}' is not a positive number "
                        f"({len(bad)} case(s) in all).", row=line_of(i), column=tcol,
                        case_id=str(ids.iloc[i]), fix="give the time to event or censoring, > 0, in one unit")
    ev = df[ecol].astype(str).str.strip().str.lower().map(
        {"1": 1.0, "1.0": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "0.0": 0.0, "false": 0.0, "no": 0.0})
    bad = np.flatnonzero(ev.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(f"The event indicator '{df[ecol].iloc[i]}' is not 0 or 1.", row=line_of(i),
                        column=ecol, case_id=str(ids.iloc[i]), fix="write 1 (event observed) or 0 (censored)")
    return time, ev.to_numpy(np.float64)


# -------------------------------------------------------------------------------- boxes


_NUM = re.compile(r"[\s,;]+")


def parse_box(cell: str) -> tuple[float, float, float, float] | None:
    parts = [p for p in _NUM.split(cell.strip().strip("[]()")) if p]
    if len(parts) != 4:
        return None
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        return None
    return x0, y0, x1, y1


def _boxes(info: TaskInfo, df: pd.DataFrame, ids: pd.Series, image_col: str, root: Path) -> np.ndarray:
    from fusiondx.data.readers.image import read_image

    col = info.label[0]
    out = np.full((len(df), 4), np.nan, dtype=np.float32)
    for pos in np.flatnonzero(df[col].notna().to_numpy()):
        cell, cid, row = str(df[col].iloc[pos]), str(ids.iloc[pos]), line_of(int(pos))
        box = parse_box(cell)
        if box is None:
            raise DataError(f"The box '{cell}' is not four numbers 'x0 y0 x1 y1'.", row=row, column=col,
                            case_id=cid, fix="write the box as 'x0 y0 x1 y1' in pixels, or leave the cell empty")
        if pd.isna(df[image_col].iloc[pos]):
            raise DataError("The case has a box but no image.", row=row, column=col, case_id=cid,
                            fix=f"add the image in column '{image_col}', or empty the box cell")
        path = resolve_path(str(df[image_col].iloc[pos]), root, column=image_col, case_id=cid, row=row)
        try:
            shape = read_image(path).array.shape
        except DataError as err:
            raise err.at(case_id=cid, row=row, column=image_col) from None
        if len(shape) != 3:
            raise DataError("Boxes are supported for 2D images only; this image is 3D.", row=row, column=col,
                            case_id=cid, file=path, fix="use a segmentation mask for volumes")
        h, w = shape[1], shape[2]
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise DataError(f"The box '{cell}' does not fit the {w}x{h} image (need 0 <= x0 < x1 <= {w}, "
                            f"0 <= y0 < y1 <= {h}).", row=row, column=col, case_id=cid, file=path,
                            fix="give x0 y0 x1 y1 in pixels of this image, x1 and y1 exclusive")
        out[pos] = (x0 / w, y0 / h, x1 / w, y1 / h)
    return out


# -------------------------------------------------------------------------------- masks


def _masks(info: TaskInfo, df: pd.DataFrame, ids: pd.Series, image: Any, root: Path) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    from fusiondx.data.readers.image import read_image

    col, size = info.label[0], tuple(image.preprocessing.size)
    out = np.zeros((len(df), 1, *size), dtype=np.uint8)
    has_image = df[image.column].notna().to_numpy()
    out[~has_image] = 255
    for pos in np.flatnonzero(df[col].notna().to_numpy()):
        cid, row = str(ids.iloc[pos]), line_of(int(pos))
        if not has_image[pos]:
            raise DataError("The case has a mask but no image.", row=row, column=col, case_id=cid,
                            fix=f"add the image in column '{image.column}', or empty the mask cell")
        path = resolve_path(str(df[col].iloc[pos]), root, column=col, case_id=cid, row=row)
        try:
            arr = read_image(path).array
        except DataError as err:
            raise err.at(case_id=cid, row=row, column=col) from None
        if arr.ndim - 1 != len(size):
            raise DataError(f"The mask is {arr.ndim - 1}D but the image modality is {len(size)}D.", row=row,
                            column=col, case_id=cid, file=path, fix="give a mask of the image's shape")
        lesion = torch.from_numpy((arr.max(axis=0) > 0).astype(np.float32))[None, None]
        if tuple(lesion.shape[2:]) != size:
            # Area averaging then >= 0.5: a pixel of the resized mask is lesion when at least half
            # of the original pixels it covers are, matching the image's anti-aliased resize.
            lesion = F.interpolate(lesion, size=size, mode="area")
        out[pos, 0] = (lesion[0, 0] >= 0.5).numpy().astype(np.uint8)
    return out


# -------------------------------------------------------------------------------- text


def _clean(text: str, lowercase: bool) -> str:
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def _word_tokenizer(texts: list[str], vocab_size: int, min_frequency: int) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=[PAD, UNK, BOS, EOS], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def text_tokenizer(info: TaskInfo) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(info.state["tokenizer"])


def special_ids(info: TaskInfo, tok: Any = None) -> dict[str, int]:
    tok = tok or text_tokenizer(info)
    return {"pad_id": tok.token_to_id(PAD), "bos_id": tok.token_to_id(BOS),
            "eos_id": tok.token_to_id(EOS), "unk_id": tok.token_to_id(UNK),
            "vocab_size": tok.get_vocab_size(), "max_length": int(info.state["max_length"])}


def encode_texts(info: TaskInfo, cells: pd.Series) -> np.ndarray:
    tok = text_tokenizer(info)
    length, lower = int(info.state["max_length"]), bool(info.state["lowercase"])
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    out = np.zeros((len(cells), length), dtype=np.int64)
    present = np.flatnonzero(cells.notna().to_numpy())
    encoded = tok.encode_batch([_clean(str(cells.iloc[i]), lower) for i in present])
    for pos, enc in zip(present, encoded, strict=True):
        ids = [bos, *enc.ids[:length - 2], eos]
        out[pos, :len(ids)] = ids
    return out


def decode_texts(info: TaskInfo, ids: np.ndarray) -> list[str]:
    """Token ids (after or including BOS) -> words joined by spaces, cut at the first EOS."""
    tok = text_tokenizer(info)
    vocab = {i: w for w, i in tok.get_vocab().items()}
    sp = special_ids(info, tok)
    out = []
    for row in np.asarray(ids):
        words = []
        for i in row.tolist():
            if i == sp["eos_id"]:
                break
            if i in (sp["pad_id"], sp["bos_id"]):
                continue
            words.append(vocab.get(int(i), UNK))
        out.append(" ".join(words))
    return out


def word_ids(info: TaskInfo, texts: list[str]) -> list[np.ndarray]:
    """Words joined by spaces (as :func:`decode_texts` writes them) -> token id arrays."""
    tok = text_tokenizer(info)
    vocab = tok.get_vocab()
    unk = vocab[UNK]
    return [np.asarray([vocab.get(w, unk) for w in str(t).split()], dtype=np.int64)
            if isinstance(t, str) else np.zeros(0, dtype=np.int64) for t in texts]
