"""Disease classification: binary, multiclass or multilabel, with optional class weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.evaluation.metrics import classification_metrics
from fusiondx.heads._base import Head, HeadContext
from fusiondx.registry import register_head

_EPS = 1e-6


@register_head("classification")
class ClassificationHead(Head):
    """Linear (or one-hidden-layer) classifier with cross-entropy / binary cross-entropy loss.

    Binary tasks have one logit (sigmoid), multiclass tasks one logit per class (softmax),
    multilabel tasks one independent logit per label. ``class_weights`` re-weights the loss:
    per class for multiclass, as the positive-class weight for binary and multilabel.
    """

    class_weights: torch.Tensor | None  # buffer registered in __init__

    def __init__(
        self,
        *,
        in_dim: int,
        num_classes: int,
        task: str = "binary",
        class_weights: Sequence[float] | None = None,
        hidden: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if task not in ("binary", "multiclass", "multilabel"):
            raise ValueError(f"unknown classification task type {task!r}")
        self.task = task
        self.num_classes = num_classes
        self.num_outputs = 1 if task == "binary" else num_classes
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        if hidden:
            layers += [nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, self.num_outputs)]
        else:
            layers.append(nn.Linear(in_dim, self.num_outputs))
        self.net = nn.Sequential(*layers)
        w = (
            torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights is not None
            else None
        )
        self.register_buffer("class_weights", w, persistent=False)

    primary_metric = "auroc"
    supports_late = True

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> torch.Tensor:  # (B, K)
        return self.net(fused)

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.class_weights
        if self.task == "multiclass":
            return F.cross_entropy(outputs, target.long(), weight=w)
        target = target.float().reshape(outputs.shape)
        if self.task == "binary" and w is not None and w.numel() == 2:
            # Per-class weights for a single logit: weight each case by its true class.
            weights = torch.where(target > 0.5, w[1], w[0])
            return F.binary_cross_entropy_with_logits(outputs, target, weight=weights)
        return F.binary_cross_entropy_with_logits(outputs, target, pos_weight=w)

    def to_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.softmax(-1) if self.task == "multiclass" else outputs.sigmoid()

    def from_probs(self, probs: torch.Tensor) -> torch.Tensor:
        p = probs.clamp(_EPS, 1 - _EPS)
        return p.log() if self.task == "multiclass" else torch.logit(p)

    def evaluate(self, outputs: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        return classification_metrics(self.to_probs(outputs), target, self.task, self.num_classes)
