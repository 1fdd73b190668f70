"""Intermediate fusion in one contrastively aligned space shared by every modality."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import clip_scale, masked_mean, pairwise_info_nce
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import mlp
from fusiondx.fusion._latent import present_features
from fusiondx.registry import register_fusion


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
        return clip_scale(self.logit_scale)

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
