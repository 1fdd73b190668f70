"""Regression of a continuous outcome (a lab value, length of stay, a score) from the fused vector."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.heads._base import Head, HeadContext, no_loss
from fusiondx.registry import register_head


@register_head("regression")
class RegressionHead(Head):
    """Linear (or one-hidden-layer) regressor, trained on the standardised target (MSE or Huber).

    Predictions are in the target's own units: the network predicts the value standardised with
    the training split's mean and standard deviation, which keeps the loss scale the same for
    targets in mg/L or in days. Cases with an empty target are left out of loss and metrics.

    Args:
        in_dim: width of the fused vector.
        target_mean, target_std: of the training targets (fitted, passed by the model builder).
        loss: ``mse`` or ``huber`` (robust to a few extreme values).
        hidden: width of a hidden layer (0: linear).
        dropout: dropout on the fused vector.
    """

    primary_metric = "r2"
    skips_missing_targets = True

    # Buffers registered in __init__.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        *,
        in_dim: int,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        loss: str = "mse",
        hidden: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if loss not in ("mse", "huber"):
            raise ValueError(f"regression loss must be 'mse' or 'huber', got {loss!r}")
        self.loss_name = loss
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        layers += (
            [nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, 1)]
            if hidden
            else [nn.Linear(in_dim, 1)]
        )
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(float(target_mean)))
        self.register_buffer("std", torch.tensor(float(target_std) if target_std > 0 else 1.0))

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> torch.Tensor:
        return self.mean + self.std * self.net(fused).squeeze(-1)  # (B,)

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float().reshape(outputs.shape)
        keep = torch.isfinite(target)
        if not keep.any():
            return no_loss(outputs)
        z, y = (outputs[keep] - self.mean) / self.std, (target[keep] - self.mean) / self.std
        return F.mse_loss(z, y) if self.loss_name == "mse" else F.huber_loss(z, y)

    def evaluate(self, predictions: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from fusiondx.evaluation.regression import regression_metrics

        return regression_metrics(
            predictions.detach().cpu().numpy().reshape(-1),
            target.detach().cpu().numpy().reshape(-1).astype("float64"),
        )
