"""Intermediate fusion by cross-modal attention between modality token sequences."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx._nn import check_heads, masked_mean
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import valid_tokens
from fusiondx.registry import register_fusion


@register_fusion(
    "cross_attention",
    reference="Lu et al., ViLBERT: co-attentional transformer layers, NeurIPS 2019; "
    "Tsai et al., Multimodal Transformer (crossmodal attention), ACL 2019",
)
class CrossAttentionFusion(Fusion):
    """Co-attention: every modality's tokens attend to the tokens of all the other modalities.

    The two-stream co-attention of ViLBERT is generalised to M modalities by letting each
    modality query the concatenated tokens of every other modality (so each pair is covered in
    both directions), with a modality embedding on the keys so a query knows what it looks at.
    A learned 'null' key is always available, so a modality with nothing to attend to (the
    others missing) attends to it instead of producing NaN. Each modality's attended tokens are
    pooled over its real tokens; the fused vector is the mean over present modalities.

    Args:
        in_dims: token width per modality.
        out_dim: width of the fused vector.
        d_model: attention width.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout on the attended values before the residual sum.
        attention_dropout: dropout on the attention weights (0 by default: see
            :mod:`fusiondx._nn`).
    """

    level = "intermediate"
    uses_tokens = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        check_heads(d_model, num_heads, owner="fusion 'cross_attention'")
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.modality_embedding = nn.Parameter(torch.randn(len(self.modalities), d_model) * 0.02)
        self.null_key = nn.Parameter(torch.zeros(1, 1, d_model))
        self.attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=attention_dropout, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, out_dim)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def forward(
        self,
        feats: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
        token_masks: Mapping[str, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        token_masks = token_masks or {}
        toks, valid = [], []
        for j, m in enumerate(self.modalities):
            x, v = valid_tokens(feats[m], mask[:, j], token_masks.get(m))
            toks.append(self.proj[m](x))
            valid.append(v)
        b = mask.shape[0]
        pooled, has = [], []
        for i in range(len(self.modalities)):
            others = [j for j in range(len(self.modalities)) if j != i]
            keys = [self.null_key.expand(b, -1, -1)] + [
                toks[j] + self.modality_embedding[j] for j in others
            ]
            key_ok = [torch.ones(b, 1, dtype=torch.bool, device=mask.device)] + [
                valid[j] for j in others
            ]
            attended, _ = self.attn(
                toks[i],
                torch.cat(keys, 1),
                torch.cat(keys, 1),
                key_padding_mask=~torch.cat(key_ok, 1),
                need_weights=False,
            )
            h = self.norm(toks[i] + self.dropout(attended))  # (B, T_i, D)
            pooled.append(masked_mean(h, valid[i]))
            has.append(valid[i].any(dim=1))
        stacked = torch.stack(pooled, 1)  # (B, M, D)
        present = torch.stack(has, 1)  # (B, M)
        w = present.to(stacked.dtype).unsqueeze(-1)
        fused = self.out((stacked * w).sum(1) / w.sum(1).clamp_min(1.0))
        return torch.where(present.any(1, keepdim=True), fused, self.empty.to(fused.dtype))
