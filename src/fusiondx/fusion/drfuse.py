"""Intermediate fusion by disentangled shared and distinct features and disease-wise attention."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import masked_softmax
from fusiondx.fusion._missing import SharedSpecific, mean_of_valid, pair_index, present_only
from fusiondx.registry import register_fusion


def combine_shared(shared: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logit(mean_m sigmoid(s_m))`` over the present modalities of (B, M, D) shared features.

    DrFuse averages the shared features as probabilities (its two-modality logsumexp formula is
    this identity); with one modality present it returns that modality's ``s_m`` unchanged.
    Computed in log space: ``log sum sigmoid(s) - log sum sigmoid(-s)``. A case with nothing
    present is computed over all (zeroed) rows, finite, and replaced by the caller.
    """
    rows = (mask | ~mask.any(dim=1, keepdim=True)).unsqueeze(-1)
    neg_inf = torch.full_like(shared, float("-inf"))
    pos = torch.where(rows, F.logsigmoid(shared), neg_inf).logsumexp(dim=1)
    neg = torch.where(rows, F.logsigmoid(-shared), neg_inf).logsumexp(dim=1)
    return pos - neg


def bernoulli_jsd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence between Bernoulli(sigmoid(a)) and Bernoulli(sigmoid(b)),
    elementwise (in nats, at most log 2)."""
    log2 = math.log(2.0)
    lp, lq = F.logsigmoid(a), F.logsigmoid(b)  # log p, log q
    lp1, lq1 = F.logsigmoid(-a), F.logsigmoid(-b)  # log(1-p), log(1-q)
    lm = torch.logaddexp(lp, lq) - log2
    lm1 = torch.logaddexp(lp1, lq1) - log2
    kl_p = lp.exp() * (lp - lm) + lp1.exp() * (lp1 - lm1)
    kl_q = lq.exp() * (lq - lm) + lq1.exp() * (lq1 - lm1)
    return 0.5 * (kl_p + kl_q)


@register_fusion(
    "drfuse",
    reference="Yao et al., DrFuse: Learning Disentangled Representation for Clinical Multi-Modal "
    "Fusion with Missing Modality and Modal Inconsistency, AAAI 2024",
)
class DrFuseFusion(Fusion):
    """Shared and distinct features per modality, fused by disease-wise attention over the present.

    As in DrFuse, every modality gets a shared feature ``s_m`` (one encoder for all modalities)
    and a distinct feature ``d_m`` (its own encoder). The shared features of the present
    modalities are combined as probabilities, ``s = logit(mean_m sigmoid(s_m))``, so a missing
    modality simply drops out of the mean. The disease-wise attention then reads the tokens
    ``[s, d_m for present m]``: one projection gives per token a query, a value and
    ``num_diseases`` keys; the query is the mean over present tokens, and each disease ``c``
    attends with its own keys (softmax over the present tokens only) to give its own
    representation. The ``num_diseases`` representations are concatenated and projected to
    ``out_dim``.

    Auxiliary losses in training, over present modalities only (weights as the paper's
    lambdas, default 1):

    - ``shared``: Jensen-Shannon divergence between the shared features of every two present
      modalities of a case, each feature read as a Bernoulli ``sigmoid(s)``; averaged over
      features and present pairs;
    - ``distinct``: ``|cos(s_m, d_m)|`` averaged over present (case, modality) pairs, pushing each
      distinct feature away from (orthogonal to) its shared one.

    Simplified from the paper: the fusion does not see the labels, so ``num_diseases`` is a free
    number of attention maps read by the task head (the paper has one per predicted label and a
    classifier on each); the paper's per-modality auxiliary predictions and its attention-ranking
    loss need the labels and the unimodal losses and are left out. The paper's JSD sums the
    positive-class term over features; here both Bernoulli terms are kept and averaged, so the
    loss does not grow with the width. The encoders are small MLPs on the modality embeddings,
    with a linear adapter per modality before the shared one.

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        width: width of the shared and distinct features.
        num_diseases: number of disease-wise attention maps.
        dropout: dropout inside the encoders.
        shared_weight: weight of the JSD alignment of shared features.
        distinct_weight: weight of the shared/distinct cosine-similarity loss.
    """

    level = "intermediate"
    has_aux_loss = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        width: int = 64,
        num_diseases: int = 4,
        dropout: float = 0.1,
        shared_weight: float = 1.0,
        distinct_weight: float = 1.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        if num_diseases < 1:
            raise ValueError(f"num_diseases must be at least 1, got {num_diseases}")
        self.width = int(width)
        self.num_diseases = int(num_diseases)
        self.shared_weight = float(shared_weight)
        self.distinct_weight = float(distinct_weight)
        self.encoders = SharedSpecific(self.in_dims, width, dropout)
        self.attn_proj = nn.Linear(width, (2 + num_diseases) * width)
        self.out = nn.Linear(num_diseases * width, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def attention(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Disease-wise representations (B, C, width) and attention weights (B, C, 1 + M) over
        ``[combined shared, distinct per modality]``; and the shared and distinct features."""
        shared, distinct = self.encoders(present_only(feats, mask, self.modalities))
        tokens = torch.cat([combine_shared(shared, mask).unsqueeze(1), distinct], dim=1)
        valid = torch.cat([mask.any(dim=1, keepdim=True), mask], dim=1)  # (B, 1 + M)
        tokens = torch.where(valid.unsqueeze(-1), tokens, torch.zeros_like(tokens))
        q, v, *keys = self.attn_proj(tokens).chunk(2 + self.num_diseases, dim=-1)
        w = valid.to(q.dtype).unsqueeze(-1)
        query = (q * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)  # mean over present tokens
        k = torch.stack(keys, dim=1)  # (B, C, 1 + M, width)
        logits = torch.einsum("bd,bcnd->bcn", query, k) / math.sqrt(self.width)
        b, c, n = logits.shape
        weights = masked_softmax(logits.reshape(b * c, n), valid.repeat_interleave(c, dim=0)).view(
            b, c, n
        )
        return torch.einsum("bcn,bnd->bcd", weights, v), weights, shared, distinct

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        per_disease, _, shared, distinct = self.attention(feats, mask)
        self.aux_losses = self._losses(shared, distinct, mask) if self.training else {}
        out = self.out(per_disease.flatten(1))
        return torch.where(mask.any(dim=1, keepdim=True), out, self.empty.to(out.dtype))

    def _losses(
        self, shared: torch.Tensor, distinct: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        i, j = pair_index(len(self.modalities), mask.device)
        jsd = bernoulli_jsd(shared[:, i], shared[:, j]).mean(dim=-1)  # (B, pairs)
        cos = F.cosine_similarity(shared, distinct, dim=-1).abs()  # (B, M)
        return {
            "shared": self.shared_weight * mean_of_valid(jsd, mask[:, i] & mask[:, j]),
            "distinct": self.distinct_weight * mean_of_valid(cos, mask),
        }
