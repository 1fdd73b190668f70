"""Pieces shared by the representation-learning fusions (``shared_space``, ``autoencoder``,
``mvae``, ``mopoe``): masked inputs, the Gaussian product of experts, the closed-form KL to
N(0, I), modality subsets, and per-modality Gaussian encoders and embedding decoders.

Every function here takes the presence mask and keeps the fusion contract: an absent modality's
placeholder is replaced with ``torch.where`` before anything reads it, so it passes neither a
value nor a gradient (a product with 0 would not do: 0 * NaN = NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


def present_features(
    feats: Mapping[str, torch.Tensor], mask: torch.Tensor, modalities: Sequence[str]
) -> list[torch.Tensor]:
    """Each modality's (B, D_m) features in ``modalities`` order, absent rows set to zero."""
    return [
        torch.where(mask[:, i : i + 1], feats[m], torch.zeros_like(feats[m]))
        for i, m in enumerate(modalities)
    ]


def product_of_experts(
    mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of the present diagonal-Gaussian experts and the prior expert N(0, I).

    ``mu`` and ``logvar`` are (..., M, d), ``mask`` (..., M) broadcastable to them. The product
    of Gaussians is Gaussian with precision ``T = 1 + sum_m T_m`` (``T_m = exp(-logvar_m)``, the
    1 is the prior's) and mean ``sum_m T_m mu_m / T`` (the prior's mean is 0). Both are computed
    in log space: ``log T`` is a logsumexp over {0, -logvar_m}, and the weights ``T_m / T`` are
    a softmax, so no precision is ever formed (a confident expert's ``exp(-logvar)`` can
    overflow). Absent experts get log precision -inf, weight exactly 0 and no gradient.
    Returns the product's (mean, log variance), each (..., d); with nothing present it is the
    prior, (0, 0).
    """
    mu, logvar, present = torch.broadcast_tensors(mu, logvar, mask.unsqueeze(-1))
    log_prec = torch.where(present, -logvar, torch.full_like(logvar, -torch.inf))
    prior = torch.zeros_like(log_prec[..., :1, :])
    log_total = torch.logsumexp(torch.cat([prior, log_prec], dim=-2), dim=-2)  # (..., d)
    weights = torch.exp(log_prec - log_total.unsqueeze(-2))
    mean = (weights * torch.where(present, mu, torch.zeros_like(mu))).sum(dim=-2)
    return mean, -log_total


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over the last axis.

    ``0.5 * sum(exp(logvar) + mu^2 - 1 - logvar)`` (Kingma & Welling, 2014, appendix B).
    """
    return 0.5 * (torch.exp(logvar) + mu.square() - 1.0 - logvar).sum(dim=-1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A differentiable sample ``mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def nonempty_subsets(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Every non-empty subset of ``n`` items as a (2^n - 1, n) bool matrix (bit i = item i)."""
    codes = torch.arange(1, 2**n, device=device).unsqueeze(1)
    return (codes >> torch.arange(n, device=device)) & 1 == 1


def sample_subsets(mask: torch.Tensor, n: int = 1) -> torch.Tensor:
    """``n`` subsets per case, each uniform among the non-empty subsets of its present modalities.

    ``mask`` (B, M) -> (B, n, M) bool; a case with nothing present gets empty subsets. A case
    with k present modalities draws a code uniform in 1..2^k - 1 whose bits pick among them
    (exact for k up to 52, where float64 still counts every code).
    """
    b, m = mask.shape
    k = mask.sum(dim=1, keepdim=True).to(torch.float64)  # (B, 1)
    u = torch.rand(b, n, dtype=torch.float64, device=mask.device)
    codes = (u * (torch.exp2(k) - 1.0)).floor().to(torch.int64) + 1  # (B, n)
    rank = (mask.cumsum(dim=1) - 1).clamp_min(0)  # a present modality's index among the present
    bits = (codes.unsqueeze(-1) >> rank.unsqueeze(1)) & 1 == 1  # (B, n, M)
    return bits & mask.unsqueeze(1)


class GaussianExperts(nn.Module):
    """One small network per modality: its embedding -> (mu, logvar) of a Gaussian q(z | x_m).

    Returns both stacked as (B, M, latent) in sorted modality order; rows of absent modalities
    are computed from the zeroed inputs and must be masked by the caller (the PoE does).
    """

    def __init__(
        self, in_dims: Mapping[str, int], latent: int, hidden: int, dropout: float
    ) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.latent = latent
        self.nets = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(in_dims[m], hidden),
                    nn.GELU(),
                    nn.Dropout(dropout),
                    nn.Linear(hidden, 2 * latent),
                )
                for m in self.names
            }
        )

    def forward(self, xs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.stack([self.nets[m](x) for m, x in zip(self.names, xs, strict=True)], dim=1)
        return out[..., : self.latent], out[..., self.latent :]


class Decoders(nn.Module):
    """One small network per modality: a latent vector -> that modality's embedding."""

    def __init__(self, in_dims: Mapping[str, int], latent: int, hidden: int) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.nets = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, in_dims[m])
                )
                for m in self.names
            }
        )

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {m: self.nets[m](z) for m in self.names}

    def error(
        self, z: torch.Tensor, targets: Sequence[torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        """Per case (B,): the sum over its present modalities of the mean squared error of
        decoding that modality's embedding from ``z`` (B, latent).

        The targets are detached: the loss trains the fusion to represent the embeddings, and
        cannot make the encoders shrink their embeddings to be trivially reconstructed.
        """
        total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for i, (m, x) in enumerate(zip(self.names, targets, strict=True)):
            err = (self.nets[m](z) - x.detach()).square().mean(dim=-1)
            total = total + torch.where(mask[:, i], err, torch.zeros_like(err))
        return total

    def error_each(
        self, z: torch.Tensor, targets: Sequence[torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        """Like :meth:`error` with one latent per modality, ``z`` (B, M, latent): modality m is
        decoded from ``z[:, m]`` only (the MVAE's single-modality ELBO terms)."""
        total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for i, (m, x) in enumerate(zip(self.names, targets, strict=True)):
            err = (self.nets[m](z[:, i]) - x.detach()).square().mean(dim=-1)
            total = total + torch.where(mask[:, i], err, torch.zeros_like(err))
        return total
