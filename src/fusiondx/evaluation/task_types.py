"""What each task type beyond classification reports: its metrics, the primary one, and the
function that computes them (all with case weights ``w`` for the bootstrap, see :mod:`.weights`)."""

from __future__ import annotations

from typing import Any

from fusiondx.evaluation.regions import box_metrics, mask_metrics
from fusiondx.evaluation.regression import regression_metrics
from fusiondx.evaluation.survival import survival_metrics
from fusiondx.evaluation.text import TEXT_METRICS, text_metrics

METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "box": ("iou", "detection_rate", "center_error"),
    "mask": ("dice", "iou", "dice_lesion", "iou_lesion"),
    "text": TEXT_METRICS,
    "survival": ("c_index",),
    "regression": ("mae", "rmse", "r2"),
}
PRIMARY: dict[str, str] = {"box": "iou", "mask": "dice_lesion", "text": "bleu4",
                           "survival": "c_index", "regression": "r2"}
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "rmse", "center_error"})
# Metrics that need the written words (METEOR): NaN in what a head logs on validation (token ids),
# so they can neither stop training nor choose a study's winner; the study's tables have them.
WORDS_ONLY: frozenset[str] = frozenset({"meteor"})

METRIC_FUNCTIONS: dict[str, Any] = {
    "box": box_metrics,  # (pred boxes, true boxes, w)
    "mask": mask_metrics,  # (mask_scores(pred, true), w)
    "text": text_metrics,  # (hyps, refs, w, unk)
    "survival": survival_metrics,  # (risk, time, event, w)
    "regression": regression_metrics,  # (pred, true, w)
}
