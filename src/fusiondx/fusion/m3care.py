"""Intermediate fusion that imputes a missing modality from similar patients in the batch."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx._nn import transformer_encoder
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._missing import present_only
from fusiondx.registry import register_fusion

MIN_BANDWIDTH = 0.05
"""Floor of the kernel bandwidth: with unit-variance features exp(-4 / 0.05) is still > 0 in
float32, so a patient sharing a modality never gets a similarity of exactly 0."""


@register_fusion(
    "m3care",
    reference="Zhang et al., M3Care: Learning with Missing Modalities in Multimodal Healthcare "
    "Data, KDD 2022",
)
class M3CareFusion(Fusion):
    """A missing modality is imputed from the batch's similar patients who have it; then attention.

    As in M3Care, each modality's embedding is projected to ``d_model`` (``h_m``) and patients
    are compared per modality with a Gaussian kernel on a learned map of ``h_m``,
    ``K_m(i, j) = exp(-|g_m(h_i) - g_m(h_j)|^2 / (D * bw_m))`` (``g_m`` ends in a LayerNorm,
    ``bw_m`` is learned). Patient similarity ``S(i, j)`` is the mean of ``K_m`` over the
    modalities both patients have (0 when they share none, 0 for ``i = j``), and similarities at
    or below ``threshold`` are dropped. A missing modality ``m`` of patient ``i`` is then
    imputed as ``sum_j S(i, j) h_m(j) / sum_j S(i, j)`` over the patients ``j`` of the batch who
    have ``m``: a convex combination of their embeddings. When no patient of the batch can
    donate it, a learned vector per modality stands in. With ``blend_present`` a present
    modality is also mixed with its donors' average by a learned gate, as the paper does to
    steady noisy modalities. The completed modalities, tagged with modality embeddings, go
    through a transformer encoder (the adaptive fusion), and its tokens, concatenated, are
    projected to ``out_dim``.

    Only present embeddings are ever read: a patient's own placeholders are never compared or
    donated, and a missing modality of another patient is never a donor.

    Batch dependence (as in the paper): a case's prediction depends on the other cases in its
    batch, in training and at prediction time. Prediction is deterministic for a given batch
    (no sampling), but the same case can score differently in another batch, and a case
    predicted alone (a batch of one) has no donors, so its missing modalities get the learned
    vectors (and, with ``blend_present``, its present ones stay as they are).

    Simplified from the paper: one kernel per modality instead of the paper's mixture of a
    learned and a plain multi-bandwidth kernel; a fixed ``threshold`` instead of a learned one;
    the imputation is the normalised similarity average instead of a graph convolution layer;
    the paper's stabilisation loss is left out.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        d_model: width of the projected embeddings and the transformer.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout inside the transformer.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        threshold: patient pairs with similarity at or below this are not neighbours (0..1).
        blend_present: also mix present modalities with their donors' average.
    """

    level = "intermediate"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        d_model: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        threshold: float = 0.0,
        blend_present: bool = True,
    ) -> None:
        super().__init__(in_dims, out_dim)
        n = len(self.modalities)
        self.threshold = float(threshold)
        self.blend_present = bool(blend_present)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.kernel = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(d_model, d_model),
                    nn.ReLU(),
                    nn.Linear(d_model, d_model),
                    nn.LayerNorm(d_model, elementwise_affine=False),
                )
                for m in self.modalities
            }
        )
        self.log_bandwidth = nn.Parameter(torch.zeros(n))
        self.missing = nn.Parameter(torch.randn(n, d_model) * 0.02)
        self.gate = nn.ModuleDict({m: nn.Linear(2 * d_model, 1) for m in self.modalities})
        self.modality_embedding = nn.Parameter(torch.randn(n, d_model) * 0.02)
        self.encoder = transformer_encoder(
            d_model,
            num_heads,
            num_layers,
            dim_feedforward=2 * d_model,
            dropout=dropout,
            attention_dropout=attention_dropout,
            final_norm=True,
            owner="fusion 'm3care'",
        )
        self.out = nn.Linear(n * d_model, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def embed(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Projected embeddings (B, M, d_model), zeros for absent modalities."""
        xs = present_only(feats, mask, self.modalities)
        h = torch.stack([self.proj[m](x) for m, x in zip(self.modalities, xs, strict=True)], dim=1)
        return torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))

    def similarity(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Patient similarity (B, B): mean kernel over the modalities both have, thresholded."""
        b = h.shape[0]
        total = h.new_zeros(b, b)
        count = h.new_zeros(b, b)
        bandwidth = MIN_BANDWIDTH + self.log_bandwidth.exp()
        for j, m in enumerate(self.modalities):
            z = self.kernel[m](h[:, j])
            dist = (z.unsqueeze(1) - z.unsqueeze(0)).pow(2).mean(dim=-1)  # (B, B)
            both = mask[:, j].unsqueeze(1) & mask[:, j].unsqueeze(0)
            total = total + torch.where(both, torch.exp(-dist / bandwidth[j]), 0.0)
            count = count + both.to(h.dtype)
        sim = total / count.clamp_min(1.0)
        keep = (
            (count > 0) & (sim > self.threshold) & ~torch.eye(b, dtype=torch.bool, device=h.device)
        )
        return torch.where(keep, sim, torch.zeros_like(sim))

    def impute(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The completed modalities (B, M, d_model); the donor weights (B, M, B), row ``[i, m]``
        summing to 1 over the patients donating modality m to patient i (all 0 without donor);
        and the projected present embeddings (B, M, d_model)."""
        h = self.embed(feats, mask)
        sim = self.similarity(h, mask)
        donors = sim.unsqueeze(1) * mask.t().unsqueeze(0).to(h.dtype)  # (B, M, B): [i, m, j]
        norm = donors.sum(dim=-1, keepdim=True)
        has_donor = norm > 0  # (B, M, 1)
        # a safe divisor where nobody donates: 0/0 would put NaN in the gradient
        weights = donors / torch.where(has_donor, norm, torch.ones_like(norm))
        pooled = torch.einsum("imj,jmd->imd", weights, h)
        imputed = torch.where(has_donor, pooled, self.missing.to(h.dtype).unsqueeze(0))
        present = mask.unsqueeze(-1)
        if self.blend_present:
            alpha = torch.sigmoid(
                torch.cat(
                    [
                        self.gate[m](torch.cat([h[:, j], pooled[:, j]], -1))
                        for j, m in enumerate(self.modalities)
                    ],
                    dim=-1,
                )
            ).unsqueeze(-1)  # (B, M, 1)
            own = torch.where(has_donor, alpha * h + (1 - alpha) * pooled, h)
        else:
            own = h
        return torch.where(present, own, imputed), weights, h

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        completed, _, _ = self.impute(feats, mask)
        z = self.encoder(completed + self.modality_embedding)
        out = self.out(z.flatten(1))
        return torch.where(mask.any(dim=1, keepdim=True), out, self.empty.to(out.dtype))
