"""The transformer report decoder: pre-norm ``nn.TransformerDecoder`` with a key-value cache."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.heads.generation._base import GenerationHead


class TransformerGenerationHead(GenerationHead, decoder="transformer"):
    """``decoder: transformer``: learned positions, causal self-attention and cross-attention
    over the memory; decoding runs one position at a time with cached keys and values.

    Built by ``GenerationHead(decoder="transformer", ...)``; the options are GenerationHead's.
    """

    def build_decoder(self, *, layers: int, heads: int, dropout: float) -> None:
        d = self.in_dim
        self.pos = nn.Parameter(torch.randn(self.max_length, d) * d**-0.5)
        layer = nn.TransformerDecoderLayer(
            d,
            heads,
            dim_feedforward=4 * d,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(d))

    def teacher_forced(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor, inp: torch.Tensor
    ) -> torch.Tensor:
        n = inp.shape[1]
        x = self.embed(inp) + self.pos[:n]
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        h = self.decoder(
            x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=padding
        )
        return self._logits(h)

    def decoding_state(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor
    ) -> dict[str, Any]:
        n, d, nh = fused.shape[0], self.in_dim, self.num_heads
        steps = self.max_length - 1
        cross, cache = [], []
        for layer in self.decoder.layers:
            mha = layer.multihead_attn
            _, wk, wv = mha.in_proj_weight.chunk(3)
            _, bk, bv = mha.in_proj_bias.chunk(3)
            cross.append(
                (self._split(F.linear(memory, wk, bk)), self._split(F.linear(memory, wv, bv)))
            )
            cache.append(
                (memory.new_zeros(n, nh, steps, d // nh), memory.new_zeros(n, nh, steps, d // nh))
            )
        # SDPA's boolean mask is True where attention is allowed: the opposite of key_padding_mask.
        return {"cross": cross, "cache": cache, "allow": ~padding[:, None, None, :]}

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, D) -> (N, heads, T, D / heads)."""
        n, t, _ = x.shape
        return x.view(n, t, self.num_heads, -1).transpose(1, 2)

    def step(self, tok: torch.Tensor, t: int, st: dict[str, Any]) -> torch.Tensor:
        # The layers of self.decoder run one position at a time with cached keys and values;
        # the same weights and operations as TransformerDecoderLayer's pre-norm forward.
        x = (self.embed(tok) + self.pos[t]).unsqueeze(1)  # (N, 1, D)
        n = x.shape[0]
        for layer, (mk, mv), (ck, cv) in zip(
            self.decoder.layers, st["cross"], st["cache"], strict=True
        ):
            sa = layer.self_attn
            p = sa.dropout if self.training else 0.0
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).chunk(3, dim=-1)
            ck[:, :, t : t + 1] = self._split(k)
            cv[:, :, t : t + 1] = self._split(v)
            a = F.scaled_dot_product_attention(
                self._split(q), ck[:, :, : t + 1], cv[:, :, : t + 1], dropout_p=p
            )
            x = x + layer.dropout1(sa.out_proj(a.transpose(1, 2).reshape(n, 1, -1)))
            mha = layer.multihead_attn
            wq, _, _ = mha.in_proj_weight.chunk(3)
            bq, _, _ = mha.in_proj_bias.chunk(3)
            q = self._split(F.linear(layer.norm2(x), wq, bq))
            a = F.scaled_dot_product_attention(q, mk, mv, attn_mask=st["allow"], dropout_p=p)
            x = x + layer.dropout2(mha.out_proj(a.transpose(1, 2).reshape(n, 1, -1)))
            x = x + layer.dropout3(
                layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm3(x)))))
            )
        norm = self.decoder.norm
        assert norm is not None  # built with norm=nn.LayerNorm(d)
        return self._logits(norm(x.squeeze(1)))

    def reorder(self, st: dict[str, Any], index: torch.Tensor, t: int) -> None:
        for k, v in st["cache"]:  # only the positions written so far
            k[:, :, : t + 1] = k[index, :, : t + 1]
            v[:, :, : t + 1] = v[index, :, : t + 1]
