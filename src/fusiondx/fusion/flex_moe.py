"""Intermediate fusion by a missing-modality bank and a sparse mixture of experts."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import check_heads, set_attention_dropout
from fusiondx.errors import ConfigError
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._missing import mean_of_valid, present_only
from fusiondx.registry import register_fusion

MAX_CONDITIONED = 10
"""Modalities up to which the bank holds one entry per combination (2^M x M vectors)."""


def combination(mask: torch.Tensor) -> torch.Tensor:
    """Each case's modality combination as an integer, bit j set when modality j is present."""
    bits = 2 ** torch.arange(mask.shape[1], device=mask.device)
    return (mask.long() * bits).sum(dim=1)


@register_fusion(
    "flex_moe",
    reference="Yun et al., Flex-MoE: Modeling Arbitrary Modality Combination via the Flexible "
    "Mixture-of-Experts, NeurIPS 2024",
)
class FlexMoEFusion(Fusion):
    """A learned bank stands in for missing modalities; a top-k sparse mixture of experts fuses.

    As in Flex-MoE, every modality is one token (its projected embedding plus a modality
    embedding). A missing modality's token is taken from the missing-modality bank: a learned
    vector per modality and, with ``condition_on_combination``, per combination of present
    modalities (so the stand-in for a missing X-ray differs between a case with labs only and
    one with labs and ECG). The M tokens go through one transformer block whose feed-forward is
    a sparse mixture of ``num_experts`` experts: a router sends each token to its ``top_k``
    experts, weighted by the softmax of their router scores. The tokens are mean-pooled,
    normalised and projected to ``out_dim``.

    Auxiliary losses in training:

    - ``balance``: the Switch Transformer load-balancing loss ``E * sum_e f_e P_e`` (``f_e`` the
      share of tokens whose first choice is expert e, ``P_e`` the mean router probability of e),
      so every expert gets used;
    - ``route``: the combination-specific routing of Flex-MoE's S-router: every token of a case
      with an incomplete combination ``c`` is trained (cross-entropy on the router) to go to
      expert ``c mod num_experts``, so each combination grows its own specialists; cases with
      every modality present are routed freely (the generalised experts).

    A present modality's token comes only from its embedding and a missing one's only from the
    bank, so neither the output nor the losses read a placeholder.

    Simplified from the paper: one MoE block on the encoders' embeddings instead of the paper's
    transformer with several MoE layers on patch tokens; the paper's curriculum (full-modality
    samples first) is replaced by the two losses from the start; experts are evaluated densely
    and mixed with sparse weights (the same result as dispatching, simpler on small batches).

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the fused vector.
        d_model: token width.
        num_experts: experts in the mixture.
        top_k: experts each token is sent to.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout on the residual branches.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
        condition_on_combination: one bank entry per combination of present modalities
            (up to 10 modalities), else one per modality.
        balance_weight: weight of the load-balancing loss.
        route_weight: weight of the combination routing loss.
    """

    level = "intermediate"
    has_aux_loss = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        d_model: int = 64,
        num_experts: int = 4,
        top_k: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        condition_on_combination: bool = True,
        balance_weight: float = 0.01,
        route_weight: float = 0.01,
    ) -> None:
        super().__init__(in_dims, out_dim)
        check_heads(d_model, num_heads, owner="fusion 'flex_moe'")
        n = len(self.modalities)
        if not 1 <= top_k <= num_experts:
            raise ConfigError(
                f"fusion 'flex_moe' top_k {top_k} must be between 1 and num_experts {num_experts}",
                fix="set fusion.options.top_k to at most num_experts",
            )
        if condition_on_combination and n > MAX_CONDITIONED:
            raise ConfigError(
                f"fusion 'flex_moe' cannot hold a bank entry for each of the 2^{n} combinations "
                f"of {n} modalities",
                fix="set fusion.options.condition_on_combination: false",
            )
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.condition = bool(condition_on_combination)
        self.balance_weight = float(balance_weight)
        self.route_weight = float(route_weight)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.bank = nn.Parameter(torch.randn(2**n if self.condition else 1, n, d_model) * 0.02)
        self.modality_embedding = nn.Parameter(torch.randn(n, d_model) * 0.02)
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        set_attention_dropout(self.attn, attention_dropout)
        self.norm_moe = nn.LayerNorm(d_model)
        self.router = nn.Linear(d_model, num_experts)
        hidden = 2 * d_model
        self.w1 = nn.Parameter(torch.randn(num_experts, d_model, hidden) * d_model**-0.5)
        self.b1 = nn.Parameter(torch.zeros(num_experts, hidden))
        self.w2 = nn.Parameter(torch.randn(num_experts, hidden, d_model) * hidden**-0.5)
        self.b2 = nn.Parameter(torch.zeros(num_experts, d_model))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, out_dim))

    def tokens(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """(B, M, d_model): present modalities projected, missing ones from the bank."""
        xs = present_only(feats, mask, self.modalities)
        own = torch.stack(
            [self.proj[m](x) for m, x in zip(self.modalities, xs, strict=True)], dim=1
        )
        row = (
            combination(mask) if self.condition else torch.zeros_like(mask[:, 0], dtype=torch.long)
        )
        filled = torch.where(mask.unsqueeze(-1), own, self.bank[row].to(own.dtype))
        return filled + self.modality_embedding

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Router logits (B, M, E) and the sparse mixing weights (B, M, E): softmax over each
        token's top-k scores, 0 for the other experts."""
        logits = self.router(x)
        top, idx = logits.topk(self.top_k, dim=-1)
        gates = torch.zeros_like(logits).scatter(-1, idx, torch.softmax(top, dim=-1))
        return logits, gates

    def experts(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's output (B, M, E, d_model)."""
        h = F.gelu(torch.einsum("bmd,edh->bmeh", x, self.w1) + self.b1)
        return torch.einsum("bmeh,ehd->bmed", self.dropout(h), self.w2) + self.b2

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = self.tokens(feats, mask)
        q = self.norm_attn(x)
        x = x + self.dropout(self.attn(q, q, q, need_weights=False)[0])
        y = self.norm_moe(x)
        logits, gates = self.route(y)
        x = x + self.dropout((gates.unsqueeze(-1) * self.experts(y)).sum(dim=2))
        self.aux_losses = self._losses(logits, mask) if self.training else {}
        return self.out(x.mean(dim=1))

    def _losses(self, logits: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        e = self.num_experts
        probs = torch.softmax(logits, dim=-1).reshape(-1, e)
        first = F.one_hot(logits.argmax(dim=-1).reshape(-1), e).to(probs.dtype)
        balance = e * (first.mean(dim=0) * probs.mean(dim=0)).sum()
        b, n, _ = logits.shape
        target = (combination(mask) % e).repeat_interleave(n)
        ce = F.cross_entropy(logits.reshape(b * n, e), target, reduction="none").view(b, n)
        incomplete = ~mask.all(dim=1, keepdim=True).expand(b, n)
        return {
            "balance": self.balance_weight * balance,
            "route": self.route_weight * mean_of_valid(ce, incomplete),
        }
