"""The per-case predictions table (predictions.csv) of every task type.

Columns, per task ``t`` (``_true`` columns only where labels are known):

- classification: ``t_true``, ``t_prob_<class>`` per class (binary: the positive class only),
  ``t_pred``; multilabel labels are ``;``-joined, ``none`` when no label is set;
- regression: ``t_true``, ``t_pred``;
- survival: ``t_time``, ``t_event``, ``t_risk`` (higher = event expected sooner);
- box: ``t_pred_x0 .. t_pred_y1`` and ``t_true_x0 .. t_true_y1`` as fractions of the image width
  and height, ``t_iou``;
- mask: ``t_lesion`` (1 if the reference mask has lesion pixels, empty when the case has no
  image), ``t_pred_fraction`` (share of pixels predicted as lesion), ``t_dice``, ``t_iou``;
- text: ``t_true`` (the reference as the model's vocabulary sees it) and ``t_pred`` (generated),
  words separated by spaces.

The study reads these columns back, so it can score and bootstrap any run without its model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.data.targets import TaskInfo

BOX_SIDES = ("x0", "y0", "x1", "y1")


def predictions_frame(model: Any, tasks: list[TaskInfo], ids: np.ndarray, split: np.ndarray,
                      targets: dict[str, np.ndarray] | None, predictions: dict[str, Any]) -> pd.DataFrame:
    """Per case: split, true label(s) or values, and the model's predictions, for every task."""
    cols: dict[str, Any] = {"case_id": ids, "split": split}
    for t in tasks:
        y = None if targets is None else targets.get(t.name)
        head = model.task_head(t.name)
        pred = predictions[t.name]
        if t.is_classification:
            cols |= _classification(t, head.to_probs(pred).numpy(), y)
        elif t.type == "regression":
            if y is not None:
                cols[f"{t.name}_true"] = y
            cols[f"{t.name}_pred"] = pred.numpy().reshape(-1)
        elif t.type == "survival":
            if y is not None:
                cols[f"{t.name}_time"], cols[f"{t.name}_event"] = y[:, 0], y[:, 1].astype(int)
            cols[f"{t.name}_risk"] = head.risk(pred).numpy()
        elif t.type == "box":
            cols |= _boxes(t, pred.numpy(), y)
        elif t.type == "mask":
            cols |= _masks(t, head, pred, y)
        elif t.type == "text":
            from fusiondx.data.task_targets import decode_texts

            if y is not None:
                cols[f"{t.name}_true"] = decode_texts(t, y)
            cols[f"{t.name}_pred"] = decode_texts(t, pred.numpy())
    return pd.DataFrame(cols)


def reference_frame(t: TaskInfo, ids: np.ndarray, split: str, y: np.ndarray, output: np.ndarray) -> pd.DataFrame:
    """The predictions table of a model that is not a FusionDx network (a study reference):
    ``output`` is the positive-class probability (binary), class probabilities (N, K), the value
    (regression) or the risk score (survival), per case."""
    cols: dict[str, Any] = {"case_id": ids, "split": split}
    out = np.asarray(output, dtype=np.float64)
    if t.is_classification:
        cols |= _classification(t, out.reshape(len(out), -1), y)
    elif t.type == "regression":
        cols |= {f"{t.name}_true": y, f"{t.name}_pred": out.reshape(-1)}
    elif t.type == "survival":
        cols |= {f"{t.name}_time": y[:, 0], f"{t.name}_event": y[:, 1].astype(int), f"{t.name}_risk": out}
    else:
        raise ValueError(f"no reference predictions for task type {t.type!r}")
    return pd.DataFrame(cols)


def _classification(t: TaskInfo, probs: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    if t.type == "binary":
        p = probs[:, 0]
        if y is not None:
            cols[f"{t.name}_true"] = [t.classes[int(v)] for v in y]
        cols[f"{t.name}_prob_{t.classes[1]}"] = p
        cols[f"{t.name}_pred"] = [t.classes[int(v >= 0.5)] for v in p]
    elif t.type == "multiclass":
        if y is not None:
            cols[f"{t.name}_true"] = [t.classes[int(v)] for v in y]
        for k, c in enumerate(t.classes):
            cols[f"{t.name}_prob_{c}"] = probs[:, k]
        cols[f"{t.name}_pred"] = [t.classes[int(k)] for k in probs.argmax(1)]
    else:
        if y is not None:
            cols[f"{t.name}_true"] = [_labels(t, row) for row in y]
        for k, c in enumerate(t.classes):
            cols[f"{t.name}_prob_{c}"] = probs[:, k]
        cols[f"{t.name}_pred"] = [_labels(t, row >= 0.5) for row in probs]
    return cols


def _labels(t: TaskInfo, row: np.ndarray) -> str:
    names = [c for c, on in zip(t.classes, row, strict=True) if on]
    return ";".join(names) if names else "none"


def _boxes(t: TaskInfo, pred: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    from fusiondx.evaluation.regions import box_iou

    cols = {f"{t.name}_pred_{s}": pred[:, k] for k, s in enumerate(BOX_SIDES)}
    if y is not None:
        cols |= {f"{t.name}_true_{s}": y[:, k] for k, s in enumerate(BOX_SIDES)}
        cols[f"{t.name}_iou"] = box_iou(pred.astype(np.float64), y.astype(np.float64))
    return cols


def _masks(t: TaskInfo, head: Any, logits: torch.Tensor, y: np.ndarray | None) -> dict[str, Any]:
    from fusiondx.evaluation.regions import mask_scores

    pred = (logits.sigmoid() >= head.threshold).numpy()
    cols: dict[str, Any] = {f"{t.name}_pred_fraction": pred.reshape(len(pred), -1).mean(axis=1)}
    if y is not None:
        flat = y.reshape(len(y), -1)
        ignored = (flat == 255).all(axis=1)
        cols[f"{t.name}_lesion"] = np.where(ignored, np.nan, (flat == 1).any(axis=1).astype(float))
        scores = mask_scores(pred, y)
        cols[f"{t.name}_dice"], cols[f"{t.name}_iou"] = scores["dice"], scores["iou"]
    return cols
