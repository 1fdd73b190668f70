"""Intermediate fusion by the full tensor (outer-product) fusion network."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.registry import register_fusion


def auto_factor_dim(n_modalities: int, max_size: int, cap: int = 32) -> int:
    """Largest ``d >= 1`` with ``(d + 1) ** n_modalities <= max_size``, at most ``cap``.

    The cap keeps one or two modalities from getting needlessly wide projections.
    """
    root = max(1, int(round(max_size ** (1.0 / n_modalities))))
    while root > 1 and root**n_modalities > max_size:  # guard against float rounding
        root -= 1
    while (root + 1) ** n_modalities <= max_size:
        root += 1
    return min(cap, max(1, root - 1))


@register_fusion(
    "tensor",
    reference="Zadeh et al., Tensor Fusion Network for Multimodal Sentiment Analysis, EMNLP 2017",
)
class TensorFusion(Fusion):
    """The full outer product of all modalities (each with a constant 1 appended), then linear.

    The paper takes the three-fold outer product of ``[h; 1]`` for language, vision and audio,
    so the flattened tensor holds every unimodal, bimodal and trimodal interaction. Generalised
    to M modalities, each modality is linearly projected to ``factor_dim`` = d features and the
    M-fold outer product has ``(d + 1) ** M`` entries, built by successive outer products and
    mapped linearly to ``out_dim``. Unless ``factor_dim`` is given, d is the largest value
    (at least 1) keeping ``(d + 1) ** M <= max_size``.

    A missing modality's vector becomes ``[0, ..., 0, 1]`` (the constant alone), so every
    interaction term it would take part in is zero and it contributes nothing; its placeholder
    is never read. With nothing present only the constant entry is non-zero and the output is a
    learned constant vector.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        max_size: upper bound on the flattened outer-product size when d is chosen automatically.
        factor_dim: per-modality projection width d; ``None`` chooses it from ``max_size``.
    """

    level = "intermediate"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        max_size: int = 8192,
        factor_dim: int | None = None,
    ) -> None:
        super().__init__(in_dims, out_dim)
        if factor_dim is None:
            factor_dim = auto_factor_dim(len(self.modalities), max_size)
        if factor_dim < 1:
            raise ValueError(f"factor_dim must be >= 1, got {factor_dim}")
        self.factor_dim = int(factor_dim)
        self.tensor_size = (self.factor_dim + 1) ** len(self.modalities)
        self.proj = nn.ModuleDict(
            {m: nn.Linear(self.in_dims[m], self.factor_dim) for m in self.modalities}
        )
        self.out = nn.Linear(self.tensor_size, out_dim)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        z: torch.Tensor | None = None
        for j, m in enumerate(self.modalities):
            h = self.proj[m](feats[m])  # (B, d)
            # torch.where, not a product: an absent placeholder passes neither values nor gradient.
            h = torch.where(mask[:, j : j + 1], h, torch.zeros_like(h))
            h1 = torch.cat([h, torch.ones_like(h[:, :1])], dim=-1)  # (B, d+1)
            z = h1 if z is None else torch.einsum("bi,bj->bij", z, h1).reshape(h1.shape[0], -1)
        assert z is not None and z.shape[1] == self.tensor_size
        return self.out(z)
