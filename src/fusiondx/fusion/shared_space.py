"""Intermediate fusion in one contrastively aligned space shared by every modality."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import mlp
from fusiondx.fusion._latent import masked_mean, present_features
from fusiondx.registry import register_fusion

MAX_LOGIT_SCALE = 100.0
"""CLIP clips its learned logit scale (1 / temperature) at 100 so that training stays stable."""


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (the CLIP loss) of N paired rows: ``a[i]`` matches ``b[i]``.

    ``logits = scale * a @ b.T``; the loss is the mean of the cross-entropy of each row (a case's
    ``a`` must pick its own ``b`` among the N) and of each column. ``a`` and ``b`` should be
    L2-normalised so that the logits are scaled cosine similarities.
    """
    logits = scale * a @ b.T
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pairwise_info_nce(z: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """:func:`info_nce` between every pair of modalities over the cases where both are present,
    averaged over the pairs that have at least two such cases (0 when none has).

    ``z`` (B, M, d) normalised, zero where absent; ``mask`` (B, M). Computed for all pairs at
    once on the whole batch, other cases masked out of each softmax, so a batch needs no
    host synchronisation to find its pairs.
    """
    zt = z.transpose(0, 1)  # (M, B, d)
    logits = scale * torch.einsum("ibd,jcd->ijbc", zt, zt)  # (M, M, B, B): row b of i vs col c of j
    present = mask.T  # (M, B)
    both = present.unsqueeze(1) & present.unsqueeze(0)  # (M, M, B): cases where i and j are
    # Only cases of the pair compete in a row's softmax; the finite fill keeps a row of a pair
    # without cases finite (it is masked out below).
    masked = logits.masked_fill(~both.unsqueeze(-2), torch.finfo(logits.dtype).min)
    # Row b of ordered pair (i, j): case b's modality i must find its own modality j. Pair (j, i)
    # is the column direction of (i, j), so the mean over ordered pairs is the symmetric loss.
    row_ce = torch.logsumexp(masked, dim=-1) - torch.diagonal(logits, dim1=-2, dim2=-1)
    row_ce = torch.where(both, row_ce, torch.zeros_like(row_ce))
    n = both.sum(dim=-1)  # (M, M) cases per pair
    off_diag = ~torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
    counted = off_diag & (n >= 2)
    per_pair = row_ce.sum(dim=-1) / n.clamp_min(1).to(z.dtype)
    per_pair = torch.where(counted, per_pair, torch.zeros_like(per_pair))
    return per_pair.sum() / counted.sum().clamp_min(1).to(z.dtype)


@register_fusion(
    "shared_space",
    reference="Radford et al., Learning Transferable Visual Models From Natural Language "
    "Supervision (CLIP), ICML 2021",
)
class SharedSpaceFusion(Fusion):
    """Every modality projected into one shared space, aligned by a CLIP loss; mean of the present.

    Each modality has a linear projection into a ``shared_dim``-wide space, L2-normalised
    (CLIP's projection heads). The fused vector is a small MLP over the mean of the present
    modalities' projections (a learned ``empty`` vector where nothing is present). In training,
    the auxiliary loss is CLIP's symmetric InfoNCE between every pair of modalities: within a
    batch, a case's projection of one modality must pick the same case's projection of the
    other among all cases where both are present, with one learned temperature (logit scale
    initialised at ``1 / temperature`` and capped at 100 as in CLIP). A pair of modalities with
    fewer than two such cases in the batch adds nothing; the loss is the mean over the pairs
    that count, times ``aux_weight``.

    :meth:`project` returns the normalised shared-space vector of each modality, the features a
    cross-modal retrieval (find the case whose report matches this image) can rank by cosine
    similarity.

    Kept from the paper: linear projections, L2 normalisation, the symmetric cross-entropy over
    in-batch negatives, the learned and clipped temperature. Simplified: CLIP pairs two
    modalities trained from scratch on 400M pairs; here every pair of the M modalities shares
    one temperature, the encoders are the run's own, batches are small (few negatives), and
    the loss is an auxiliary term beside the task loss rather than the only objective.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        shared_dim: width of the shared space.
        hidden: width of the MLP's hidden layer.
        dropout: dropout inside the MLP.
        aux_weight: weight of the contrastive loss in the training objective.
        temperature: initial softmax temperature (CLIP: 0.07).
    """

    level = "intermediate"
    has_aux_loss = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        shared_dim: int = 64,
        hidden: int = 128,
        dropout: float = 0.1,
        aux_weight: float = 0.1,
        temperature: float = 0.07,
    ) -> None:
        super().__init__(in_dims, out_dim)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.aux_weight = float(aux_weight)
        self.proj = nn.ModuleDict(
            {m: nn.Linear(self.in_dims[m], shared_dim) for m in self.modalities}
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.head = mlp(shared_dim, hidden, out_dim, layers=2, dropout=dropout)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def _shared(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        xs = present_features(feats, mask, self.modalities)
        z = torch.stack(
            [
                F.normalize(self.proj[m](x), dim=-1)
                for m, x in zip(self.modalities, xs, strict=True)
            ],
            dim=1,
        )
        return torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z))  # (B, M, d)

    def project(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Each modality's unit-length vector in the shared space, (B, shared_dim); zero rows
        where the modality is absent (cosine similarity 0 with anything)."""
        z = self._shared(feats, mask)
        return {m: z[:, i] for i, m in enumerate(self.modalities)}

    def logit_scale_value(self) -> torch.Tensor:
        """The learned inverse temperature, capped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        z = self._shared(feats, mask)
        fused = self.head(masked_mean(z, mask))
        out = torch.where(mask.any(dim=1, keepdim=True), fused, self.empty.to(fused.dtype))
        if self.training:
            loss = pairwise_info_nce(z, mask, self.logit_scale_value())
            self.aux_losses = {"contrastive": self.aux_weight * loss}
        else:
            self.aux_losses = {}
        return out
