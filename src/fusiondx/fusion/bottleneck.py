"""Intermediate fusion through shared attention-bottleneck tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from fusiondx._nn import transformer_layer
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import valid_tokens
from fusiondx.registry import register_fusion


@register_fusion(
    "bottleneck",
    reference="Nagrani et al., Attention Bottlenecks for Multimodal Fusion, NeurIPS 2021",
)
class BottleneckFusion(Fusion):
    """Modalities exchange information only through a few shared bottleneck tokens.

    In each layer, every modality runs its own transformer layer over [its tokens;
    bottleneck tokens]; the new bottleneck is the mean of the modalities' updated copies
    (over present modalities only, as in the paper's averaging across streams, generalised
    from two streams to M). A missing modality does not update the bottleneck; with nothing
    present the learned initial bottleneck passes through. The fused vector is the mean of
    the final bottleneck tokens.

    Args:
        in_dims: token width per modality.
        out_dim: width of the fused vector.
        d_model: transformer width.
        num_bottlenecks: number of shared bottleneck tokens.
        num_layers: fusion layers.
        num_heads: attention heads (must divide ``d_model``).
        dropout: dropout inside the layers.
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
        num_bottlenecks: int = 4,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], d_model) for m in self.modalities})
        self.bottleneck = nn.Parameter(torch.randn(1, num_bottlenecks, d_model) * 0.02)
        self.layers = nn.ModuleList(
            [
                nn.ModuleDict(
                    {
                        m: transformer_layer(
                            d_model,
                            num_heads,
                            2 * d_model,
                            dropout=dropout,
                            attention_dropout=attention_dropout,
                            owner="fusion 'bottleneck'",
                        )
                        for m in self.modalities
                    }
                )
                for _ in range(num_layers)
            ]
        )
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, out_dim))

    def forward(
        self,
        feats: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
        token_masks: Mapping[str, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        token_masks = token_masks or {}
        b = mask.shape[0]
        toks, valid = {}, {}
        for j, m in enumerate(self.modalities):
            x, v = valid_tokens(feats[m], mask[:, j], token_masks.get(m))
            toks[m], valid[m] = self.proj[m](x), v
        z = self.bottleneck.expand(b, -1, -1)
        n_b = z.shape[1]
        z_ok = torch.ones(b, n_b, dtype=torch.bool, device=mask.device)
        w = mask.to(z.dtype)  # (B, M)
        for layer in self.layers:
            blocks = cast(nn.ModuleDict, layer)  # nn.ModuleList is not generic
            updates = []
            for m in self.modalities:
                h = blocks[m](
                    torch.cat([toks[m], z], 1), src_key_padding_mask=~torch.cat([valid[m], z_ok], 1)
                )
                toks[m] = h[:, :-n_b]
                updates.append(h[:, -n_b:])
            stacked = torch.stack(updates, 1)  # (B, M, n_b, D)
            stacked = torch.where(mask[:, :, None, None], stacked, torch.zeros_like(stacked))
            mean = (stacked * w[:, :, None, None]).sum(1) / w.sum(1).clamp_min(1.0)[:, None, None]
            z = torch.where(mask.any(1)[:, None, None], mean, z)
        return self.out(z.mean(1))
