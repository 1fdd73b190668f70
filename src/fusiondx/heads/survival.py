"""Survival: time to an event with censoring, from the fused vector (Cox or discrete-time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.heads._base import Head, HeadContext, no_loss
from fusiondx.registry import register_head


def cox_loss(log_risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood per event, Breslow's handling of tied times.

    The risk set of a case is every case still under observation at its time (t_j >= t_i),
    tied times included; over a mini-batch this is the usual estimate (DeepSurv).
    """
    order = torch.argsort(time, descending=True)
    eta, t, e = log_risk[order], time[order], event[order]
    lse = torch.logcumsumexp(eta, dim=0)
    # With times sorted descending, a case's risk set ends at the last case tied with it.
    last = (t.unsqueeze(0) >= t.unsqueeze(1)).sum(dim=1) - 1
    ll = (eta - lse[last]) * e
    return -ll.sum() / e.sum()


def discrete_time_loss(
    logits: torch.Tensor, time: torch.Tensor, event: torch.Tensor, edges: torch.Tensor
) -> torch.Tensor:
    """Negative log-likelihood of a discrete-time hazard model (one hazard per time bin).

    A case whose event falls in bin k survived bins 0..k-1 and had the event in k; a case
    censored in bin k survived bins 0..k-1 (censoring is taken to happen at the bin's start,
    the conservative choice that never credits survival the case was not seen to have).
    """
    k = torch.bucketize(time, edges, right=True)  # bin of each case, 0..K-1
    bins = torch.arange(logits.shape[1], device=logits.device).unsqueeze(0)
    before = (bins < k.unsqueeze(1)).float()
    at = (bins == k.unsqueeze(1)).float() * event.unsqueeze(1)
    # log(1 - h) = logsigmoid(-x), log h = logsigmoid(x)
    ll = (before * F.logsigmoid(-logits) + at * F.logsigmoid(logits)).sum(dim=1)
    return -ll.mean()


@register_head("survival")
class SurvivalHead(Head):
    """Risk of an event over time with censoring: Cox partial likelihood or discrete-time hazards.

    ``cox`` predicts one log relative risk per case (DeepSurv; Katzman et al., 2018);
    ``discrete`` predicts a hazard per time bin (bins at quantiles of the training event times)
    and ranks cases by their cumulative hazard. Either way the metric is Harrell's concordance
    index. The target is (time, event) per case.

    Args:
        in_dim: width of the fused vector.
        method: ``cox`` or ``discrete``.
        bin_edges: inner edges of the time bins (fitted on the training split; discrete only).
        hidden: width of a hidden layer (0: linear).
        dropout: dropout on the fused vector.
    """

    primary_metric = "c_index"
    skips_missing_targets = True

    edges: torch.Tensor  # buffer registered in __init__

    def __init__(
        self,
        *,
        in_dim: int,
        method: str = "cox",
        bin_edges: Sequence[float] = (),
        hidden: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if method not in ("cox", "discrete"):
            raise ValueError(f"survival method must be 'cox' or 'discrete', got {method!r}")
        self.method = method
        n_out = 1 if method == "cox" else len(bin_edges) + 1
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        layers += (
            [nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, n_out)]
            if hidden
            else [nn.Linear(in_dim, n_out)]
        )
        self.net = nn.Sequential(*layers)
        self.register_buffer(
            "edges", torch.tensor([float(e) for e in bin_edges], dtype=torch.float32)
        )

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> torch.Tensor:
        return self.net(fused)  # (B, 1) log-risk, or (B, K) hazard logits

    def risk(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B,) a score that is higher for cases expected to have the event sooner."""
        if self.method == "cox":
            return outputs[:, 0]
        return -F.logsigmoid(-outputs).sum(dim=1)  # cumulative hazard over all bins

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        keep = torch.isfinite(target).all(dim=1)
        time, event = target[keep, 0], target[keep, 1]
        if self.method == "cox":
            if event.sum() == 0:
                return no_loss(outputs)
            return cox_loss(outputs[keep, 0], time, event)
        if not keep.any():
            return no_loss(outputs)
        return discrete_time_loss(outputs[keep], time, event, self.edges)

    def evaluate(self, predictions: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from fusiondx.evaluation.survival import survival_metrics

        y = target.detach().cpu().double().numpy()
        return survival_metrics(
            self.risk(predictions).detach().cpu().double().numpy(), y[:, 0], y[:, 1]
        )
