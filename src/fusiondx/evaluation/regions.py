"""Lesion boxes and masks: per-case IoU and Dice, and their means under case weights.

Boxes are normalised xyxy rows (NaN where a case has no lesion); masks are binary arrays whose
true side may be 255 everywhere to mark a case to ignore. See :mod:`.weights` for ``w``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.evaluation.weights import BLOCK_ELEMENTS, weighted_mean


def box_iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-case IoU of aligned xyxy boxes (N, 4), (N, 4) -> (N,).

    NaN where the true row is NaN (no lesion: nothing to score). A NaN predicted row against a
    true box scores 0 (the model found nothing). Degenerate predicted boxes (x1 < x0) have area 0.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    iw = np.clip(np.minimum(p[:, 2], t[:, 2]) - np.maximum(p[:, 0], t[:, 0]), 0, None)
    ih = np.clip(np.minimum(p[:, 3], t[:, 3]) - np.maximum(p[:, 1], t[:, 1]), 0, None)
    inter = iw * ih
    area_p = np.clip(p[:, 2] - p[:, 0], 0, None) * np.clip(p[:, 3] - p[:, 1], 0, None)
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_p + area_t - inter)
    has_true = np.isfinite(t).all(axis=1)
    iou = np.where(np.isfinite(p).all(axis=1), iou, 0.0)
    return np.where(has_true, iou, np.nan)


def box_metrics(
    pred: np.ndarray, true: np.ndarray, w: np.ndarray | None = None, iou_threshold: float = 0.5
) -> dict[str, Any]:
    """Mean IoU, detection rate (IoU >= threshold) and centre error over cases with a true box.

    ``center_error`` is the Euclidean distance between box centres in units of the image side
    (boxes are normalised); it skips cases whose predicted row is NaN (no centre to measure).
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    iou = box_iou(p, t)
    hit = np.where(np.isnan(iou), np.nan, (iou >= iou_threshold).astype(np.float64))
    centre = np.hypot(
        (p[:, 0] + p[:, 2] - t[:, 0] - t[:, 2]) / 2, (p[:, 1] + p[:, 3] - t[:, 1] - t[:, 3]) / 2
    )
    return {
        "iou": weighted_mean(iou, w),
        "detection_rate": weighted_mean(hit, w),
        "center_error": weighted_mean(centre, w),
    }


def mask_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per-case Dice and IoU of binary masks: pred (N, *S) bool, true (N, *S) uint8 0/1.

    A true mask that is 255 in every pixel marks a case to ignore (NaN scores, NaN pixel counts).
    Both masks empty: Dice = IoU = 1 (nothing to find, nothing found); true empty but pred not: 0.
    Returns ``dice``, ``iou``, ``true_pixels`` and ``pred_pixels`` (N,) float arrays, to be stored
    per case and averaged by :func:`mask_metrics`.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ")
    n = pred.shape[0] if pred.ndim else 0
    p, t = pred.reshape(n, -1), true.reshape(n, -1)
    inter, ps, ts = (np.zeros(n) for _ in range(3))
    ignored = np.zeros(n, dtype=bool)
    step = max(1, BLOCK_ELEMENTS // max(1, p.shape[1]))  # cases per chunk: bounded temporaries
    for s in range(0, n, step):
        pc = p[s : s + step] != 0
        tc = t[s : s + step]
        void = tc == 255
        ign = void.all(axis=1)
        if (void.any(axis=1) & ~ign).any():
            raise ValueError("255 must fill a whole true mask (an ignored case), not part of one")
        lesion = tc == 1
        if (~(lesion | void) & (tc != 0)).any():
            raise ValueError("true masks must hold 0/1 pixels (or 255 everywhere to ignore)")
        ignored[s : s + step] = ign
        inter[s : s + step] = np.count_nonzero(pc & lesion, axis=1)
        ps[s : s + step] = np.count_nonzero(pc, axis=1)
        ts[s : s + step] = np.count_nonzero(lesion, axis=1)
    union = ps + ts - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(ps + ts > 0, 2 * inter / (ps + ts), 1.0)
        iou = np.where(union > 0, inter / union, 1.0)
    nan = np.full(n, np.nan)
    return {
        "dice": np.where(ignored, nan, dice),
        "iou": np.where(ignored, nan, iou),
        "true_pixels": np.where(ignored, nan, ts),
        "pred_pixels": np.where(ignored, nan, ps),
    }


def mask_metrics(scores: dict[str, np.ndarray], w: np.ndarray | None = None) -> dict[str, Any]:
    """Dice/IoU averaged over non-ignored cases, and ``*_lesion`` over cases with a lesion.

    ``dice_lesion`` (cases whose true mask has a lesion pixel) is the usual lesion-segmentation
    number; ``dice`` also credits correct empty predictions on lesion-free cases.
    """
    lesion = np.nan_to_num(np.asarray(scores["true_pixels"], dtype=np.float64)) > 0
    dice = np.asarray(scores["dice"], dtype=np.float64)
    iou = np.asarray(scores["iou"], dtype=np.float64)
    return {
        "dice": weighted_mean(dice, w),
        "iou": weighted_mean(iou, w),
        "dice_lesion": weighted_mean(np.where(lesion, dice, np.nan), w),
        "iou_lesion": weighted_mean(np.where(lesion, iou, np.nan), w),
    }
