"""Pieces shared by several fusion strategies."""

from __future__ import annotations

import torch
from torch import nn


class AbsentEmbedding(nn.Module):
    """Replaces a missing modality's features with a learned 'absent' vector of that modality.

    The placeholder a missing modality arrives with is zeros that could pass for data; swapping
    in a learned vector tells the downstream network the modality is absent, and no gradient
    reaches the encoder from a masked case.
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.absent = nn.ParameterList([nn.Parameter(torch.zeros(d)) for d in dims])

    def forward(self, feats: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        # torch.where, not a product: a masked case must pass neither values nor gradient.
        return [
            torch.where(mask[:, i : i + 1], f, self.absent[i].to(f.dtype))
            for i, f in enumerate(feats)
        ]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` Linear-GELU-Dropout blocks, the last mapping to ``out_dim``."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
        d = hidden
    mods += [nn.Linear(d, out_dim), nn.GELU()]
    return nn.Sequential(*mods)


class Projections(nn.Module):
    """One linear map per modality to a common width, stacked as (B, M, D) in sorted order."""

    def __init__(self, in_dims: dict[str, int], out_dim: int) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(in_dims[m], out_dim) for m in self.names})

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:  # (B, M, D)
        return torch.stack([self.proj[m](feats[m]) for m in self.names], dim=1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the modality axis of (B, M) scores, restricted to present modalities.

    Weights of absent modalities are exactly 0; a case with nothing present gets all zeros
    (not NaN), so its weighted sum is 0 and the caller decides what that case returns.
    """
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=1)
    return weights * mask.any(dim=1, keepdim=True).to(weights.dtype) * mask.to(weights.dtype)


def weighted_sum(
    x: torch.Tensor, weights: torch.Tensor, empty: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """sum_m w_m x_m over (B, M, D), with the learned ``empty`` vector where nothing is present."""
    # Zero absent rows first: a weight of 0 times a NaN placeholder would still be NaN.
    x = torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x))
    fused = (weights.unsqueeze(-1) * x).sum(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), fused, empty.to(fused.dtype))


def valid_tokens(
    x: torch.Tensor, present: torch.Tensor, token_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (B, T, D) with padding and absent-modality tokens zeroed, and their (B, T) validity.

    An encoder without a token sequence gives (B, D); it becomes a single token.
    """
    if x.dim() == 2:
        x = x.unsqueeze(1)
    valid = present.unsqueeze(1).expand(-1, x.shape[1])
    if token_mask is not None:
        valid = valid & token_mask.bool()
    return torch.where(valid.unsqueeze(-1), x, torch.zeros_like(x)), valid


LATE_TASKS = ("binary", "multiclass", "multilabel")


def no_modality_fill(task: str, out_dim: int, fill: float | None = None) -> float:
    """The probability a late fusion returns for a case with no modality present.

    One rule for every late fusion: such a case carries no information, so it gets the
    uninformative prediction, 1/K for each of K mutually exclusive classes (multiclass: the
    outputs must still sum to one) and 0.5 for each independent output (binary, multilabel).
    ``fill`` overrides it.
    """
    if task not in LATE_TASKS:
        raise ValueError(f"task must be one of {LATE_TASKS}, got {task!r}")
    if fill is not None:
        return float(fill)
    return 1.0 / out_dim if task == "multiclass" else 0.5


def present_mean(probs: torch.Tensor, mask: torch.Tensor, empty: float) -> torch.Tensor:
    """Mean of (B, M, K) over the present modalities of ``mask`` (B, M); ``empty`` where none is."""
    present = mask.unsqueeze(-1)
    w = present.to(probs.dtype)
    total = w.sum(dim=1)
    # Zero absent rows first: a weight of 0 times a NaN placeholder would still be NaN.
    mean = (torch.where(present, probs, torch.zeros_like(probs)) * w).sum(dim=1) / total.clamp_min(
        1.0
    )
    return torch.where(total > 0, mean, torch.full_like(mean, empty))
