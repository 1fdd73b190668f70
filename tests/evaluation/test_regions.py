"""Lesion boxes and masks: known answers, and agreement with MONAI and torchmetrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from fusiondx.evaluation import regions as rg


def _close(a, b, tol: float = 1e-9) -> bool:
    return bool(
        np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol, rtol=tol, equal_nan=True)
    )


# --------------------------------------------------------------------------- boxes


def test_box_known_answers() -> None:
    true = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9], [np.nan] * 4])
    m = rg.box_metrics(true.copy(), true)
    assert m["iou"] == pytest.approx(1.0) and m["detection_rate"] == pytest.approx(1.0)
    assert m["center_error"] == pytest.approx(0.0)
    disjoint = np.array([[0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2], [0, 0, 1, 1]])
    m = rg.box_metrics(disjoint, true)
    assert m["iou"] == 0.0 and m["detection_rate"] == 0.0
    # quarter-image boxes shifted by a quarter: IoU 1/16 / (1/4 + 1/4 - 1/16) = 1/7
    iou = rg.box_iou(np.array([[0, 0, 0.5, 0.5]]), np.array([[0.25, 0.25, 0.75, 0.75]]))
    assert iou[0] == pytest.approx(1 / 7)
    m = rg.box_metrics(np.array([[0, 0, 0.5, 0.5]]), np.array([[0.25, 0.25, 0.75, 0.75]]))
    assert m["center_error"] == pytest.approx(math.hypot(0.25, 0.25))


def test_box_iou_matches_monai_and_handles_missing_rows() -> None:
    from monai.data.box_utils import box_iou as monai_box_iou

    rng = np.random.default_rng(0)
    lo = rng.random((50, 2)) * 0.6
    true = np.concatenate([lo, lo + 0.05 + rng.random((50, 2)) * 0.35], axis=1)
    pred = np.clip(true + rng.normal(0, 0.08, true.shape), 0, 1)
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 0.01)
    ref = np.diag(monai_box_iou(pred, true))
    assert _close(rg.box_iou(pred, true), ref, 1e-5)  # monai: float32, eps in the union
    true[3] = np.nan
    pred[7] = np.nan  # a model that predicted nothing where there is a box
    iou = rg.box_iou(pred, true)
    assert math.isnan(iou[3]) and iou[7] == 0.0
    m = rg.box_metrics(pred, true)
    keep = np.ones(50, bool)
    keep[3] = False
    assert m["iou"] == pytest.approx(iou[keep].mean())
    assert m["detection_rate"] == pytest.approx((iou[keep] >= 0.5).mean())


# --------------------------------------------------------------------------- masks


def _random_masks(
    rng: np.random.Generator, n: int = 12, size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    true = np.zeros((n, 1, size, size), np.uint8)
    pred = np.zeros((n, 1, size, size), bool)
    for i in range(n):
        y, x = rng.integers(0, size - 6, 2)
        true[i, 0, y : y + 6, x : x + 5] = 1
        y, x = np.clip([y, x] + rng.integers(-3, 4, 2), 0, size - 6)
        pred[i, 0, y : y + 5, x : x + 6] = True
    return pred, true


def test_mask_known_answers_and_ignored_cases() -> None:
    pred, true = _random_masks(np.random.default_rng(1), n=6)
    s = rg.mask_scores(true.astype(bool), true)
    assert _close(s["dice"], 1.0) and _close(s["iou"], 1.0)
    true[1] = 0  # no lesion, nothing predicted: a correct empty answer
    pred[1] = False
    true[2] = 0  # no lesion, something predicted: wrong
    true[3] = 255  # ignored case
    s = rg.mask_scores(pred, true)
    assert s["dice"][1] == 1.0 and s["iou"][1] == 1.0
    assert s["dice"][2] == 0.0 and s["iou"][2] == 0.0
    assert math.isnan(s["dice"][3]) and math.isnan(s["true_pixels"][3])
    m = rg.mask_metrics(s)
    assert m["dice"] == pytest.approx(s["dice"][[0, 1, 2, 4, 5]].mean())
    assert m["dice_lesion"] == pytest.approx(s["dice"][[0, 4, 5]].mean())
    assert m["iou_lesion"] == pytest.approx(s["iou"][[0, 4, 5]].mean())
    bad = true.copy()
    bad[0, 0, 0, 0] = 255
    with pytest.raises(ValueError):
        rg.mask_scores(pred, bad)


def test_mask_scores_match_monai_and_torchmetrics() -> None:
    from monai.metrics import compute_dice, compute_iou
    from torchmetrics.functional.segmentation import dice_score

    pred, true = _random_masks(np.random.default_rng(2))
    true[0] = 0  # empty truth: monai with ignore_empty=False uses the same 1 / 0 convention
    pred[0] = False
    true[1] = 0
    s = rg.mask_scores(pred, true)
    p, t = torch.from_numpy(pred).float(), torch.from_numpy(true).float()
    assert _close(s["dice"], compute_dice(p, t, ignore_empty=False).numpy().ravel(), 1e-6)
    assert _close(s["iou"], compute_iou(p, t, ignore_empty=False).numpy().ravel(), 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmd = (
            dice_score(
                torch.from_numpy(pred[2:]).long(),
                torch.from_numpy(true[2:]).long(),
                num_classes=1,
                average="none",
            )
            .numpy()
            .ravel()
        )
    assert _close(s["dice"][2:], tmd, 1e-6)
