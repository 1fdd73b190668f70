"""Classification metrics over a whole split (torchmetrics), as plain floats for metrics.json.

Names are the same for every task type: accuracy, balanced_accuracy, precision, recall, f1
(macro over classes; for binary tasks over the two classes), specificity, auroc, auprc; binary
tasks add sensitivity (recall of the positive class). The confusion matrix has true classes as
rows. A metric that is undefined on the given cases (e.g. AUROC when the split holds one class)
is NaN, never a misleading number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
import torchmetrics.functional.classification as tmf


def classification_metrics(
    probs: torch.Tensor,
    target: torch.Tensor,
    task: str,
    num_classes: int,
    threshold: float | Sequence[float] = 0.5,
) -> dict[str, Any]:
    """Metrics from predicted probabilities (N, K) (binary: (N, 1)) and targets.

    A case (label) is called positive when its probability is above ``threshold``: one number,
    or one per label for a multilabel task (a binary task takes the first); multiclass tasks
    predict the most probable class.
    """
    probs = probs.detach().float().cpu()
    target = target.detach().cpu()
    thr = torch.as_tensor(threshold, dtype=torch.float32).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # torchmetrics warns on absent classes; we return NaN instead
        if task == "binary":
            return _binary(probs.reshape(-1), target.reshape(-1).long(), float(thr[0]))
        if task == "multiclass":
            return _multiclass(probs, target.long(), num_classes)
        if thr.numel() == 1:
            return _multilabel(probs, target.long(), num_classes, float(thr[0]))
        # One threshold per label: the 0/1 calls are made here (torchmetrics takes one number).
        return _multilabel(probs, target.long(), num_classes, 0.5, (probs > thr).long())


def _f(x: torch.Tensor) -> float:
    v = float(x)
    return v if math.isfinite(v) else float("nan")


def _binary(p: torch.Tensor, y: torch.Tensor, thr: float) -> dict[str, Any]:
    two = (p > thr).long()  # the called class; at 0.5 the same as argmax([1 - p, p])
    both = len(torch.unique(y)) == 2
    out = {
        "accuracy": _f(tmf.binary_accuracy(p, y, threshold=thr)),
        "balanced_accuracy": _f(tmf.multiclass_recall(two, y, num_classes=2, average="macro")),
        "precision": _f(tmf.multiclass_precision(two, y, num_classes=2, average="macro")),
        "recall": _f(tmf.multiclass_recall(two, y, num_classes=2, average="macro")),
        "f1": _f(tmf.multiclass_f1_score(two, y, num_classes=2, average="macro")),
        "sensitivity": _f(tmf.binary_recall(p, y, threshold=thr)),
        "specificity": _f(tmf.binary_specificity(p, y, threshold=thr)),
        "auroc": _f(tmf.binary_auroc(p, y)) if both else float("nan"),
        "auprc": _f(tmf.binary_average_precision(p, y)) if both else float("nan"),
        "confusion_matrix": tmf.binary_confusion_matrix(p, y, threshold=thr).tolist(),
    }
    return out


def _multiclass(p: torch.Tensor, y: torch.Tensor, k: int) -> dict[str, Any]:
    kw: dict[str, Any] = {"num_classes": k, "average": "macro"}
    onehot = F.one_hot(y, k)
    return {
        "accuracy": _f(tmf.multiclass_accuracy(p, y, num_classes=k, average="micro")),
        "balanced_accuracy": _f(tmf.multiclass_recall(p, y, **kw)),
        "precision": _f(tmf.multiclass_precision(p, y, **kw)),
        "recall": _f(tmf.multiclass_recall(p, y, **kw)),
        "f1": _f(tmf.multiclass_f1_score(p, y, **kw)),
        "specificity": _f(tmf.multiclass_specificity(p, y, **kw)),
        "auroc": _defined_mean(tmf.multiclass_auroc(p, y, num_classes=k, average="none"), onehot),
        "auprc": _defined_mean(
            tmf.multiclass_average_precision(p, y, num_classes=k, average="none"), onehot
        ),
        "confusion_matrix": tmf.multiclass_confusion_matrix(p, y, num_classes=k).tolist(),
    }


def _multilabel(
    p: torch.Tensor, y: torch.Tensor, k: int, thr: float, called: torch.Tensor | None = None
) -> dict[str, Any]:
    kw: dict[str, Any] = {"num_labels": k, "average": "macro", "threshold": thr}
    c = p if called is None else called  # integer calls are taken as they are
    rec = tmf.multilabel_recall(c, y, num_labels=k, average="none", threshold=thr)
    spec = tmf.multilabel_specificity(c, y, num_labels=k, average="none", threshold=thr)
    return {
        "accuracy": _f(tmf.multilabel_accuracy(c, y, **kw)),
        "balanced_accuracy": _f(((rec + spec) / 2).mean()),
        "precision": _f(tmf.multilabel_precision(c, y, **kw)),
        "recall": _f(rec.mean()),
        "f1": _f(tmf.multilabel_f1_score(c, y, **kw)),
        "specificity": _f(spec.mean()),
        "auroc": _defined_mean(tmf.multilabel_auroc(p, y, num_labels=k, average="none"), y),
        "auprc": _defined_mean(
            tmf.multilabel_average_precision(p, y, num_labels=k, average="none"), y
        ),
        "confusion_matrix": tmf.multilabel_confusion_matrix(
            c, y, num_labels=k, threshold=thr
        ).tolist(),
    }


def _defined_mean(per_class: torch.Tensor, onehot: torch.Tensor) -> float:
    """Macro average over the classes whose AUROC/AP is defined here (both outcomes occur).

    torchmetrics scores a class without positives as 0, which would drag the macro average of
    a small test split with a rare label towards 0; such a class is left out instead (as the
    study's bootstrap does), and NaN is returned when no class is defined.
    """
    pos = onehot.sum(dim=0)
    ok = (pos > 0) & (pos < onehot.shape[0])
    return _f(per_class[ok].mean()) if bool(ok.any()) else float("nan")
