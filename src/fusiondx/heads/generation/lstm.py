"""The LSTM report decoder: stacked LSTM cells with additive (Bahdanau) attention over the memory."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from fusiondx.heads.generation._base import GenerationHead


class LSTMGenerationHead(GenerationHead, decoder="lstm"):
    """``decoder: lstm``: stacked LSTM cells whose initial state comes from the fused vector (the
    learned token for context "none"), attending over the memory at every step, the read-out
    fed in with the previous word.

    Built by ``GenerationHead(decoder="lstm", ...)``; the options are GenerationHead's (``heads``
    is not used).
    """

    def build_decoder(self, *, layers: int, heads: int, dropout: float) -> None:
        d = self.in_dim
        self.init_state = nn.Linear(d, 2 * layers * d)
        self.cells = nn.ModuleList(nn.LSTMCell(2 * d if i == 0 else d, d) for i in range(layers))
        self.att_key = nn.Linear(d, d, bias=False)
        self.att_query = nn.Linear(d, d)
        self.att_v = nn.Linear(d, 1, bias=False)
        self.out_state = nn.Linear(2 * d, d)
        self.drop = nn.Dropout(dropout)

    def _cond(self, fused: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) vector that sets the LSTM's initial state (never the fused one for 'none')."""
        if self.context == "none":
            assert self.null_token is not None  # built in __init__ for context 'none'
            return self.null_token.to(fused.dtype).expand(fused.shape[0], -1)
        return fused

    def decoding_state(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor
    ) -> dict[str, Any]:
        hc = torch.tanh(self.init_state(self._cond(fused))).chunk(2 * self.num_layers, dim=-1)
        state = (list(hc[: self.num_layers]), list(hc[self.num_layers :]))
        # Keys projected once, not at every step.
        return {"state": state, "memory": memory, "keys": self.att_key(memory), "padding": padding}

    def step(self, tok: torch.Tensor, t: int, st: dict[str, Any]) -> torch.Tensor:
        hs, cs = st["state"]
        memory = st["memory"]
        # Bahdanau: the previous top state asks where to look before this step's update.
        score = self.att_v(torch.tanh(st["keys"] + self.att_query(hs[-1]).unsqueeze(1))).squeeze(-1)
        weights = score.masked_fill(st["padding"], -math.inf).softmax(-1)
        read = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        x = torch.cat([self.embed(tok), read], dim=-1)
        new_h, new_c = [], []
        for i, cell in enumerate(self.cells):
            h, c = cell(x if i == 0 else self.drop(x), (hs[i], cs[i]))
            new_h.append(h)
            new_c.append(c)
            x = h
        st["state"] = (new_h, new_c)
        out = torch.tanh(self.out_state(self.drop(torch.cat([x, read], dim=-1))))
        return self._logits(self.drop(out))

    def teacher_forced(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor, inp: torch.Tensor
    ) -> torch.Tensor:
        st = self.decoding_state(fused, memory, padding)
        return torch.stack([self.step(inp[:, t], t, st) for t in range(inp.shape[1])], dim=1)

    def reorder(self, st: dict[str, Any], index: torch.Tensor, t: int) -> None:
        hs, cs = st["state"]
        st["state"] = ([h[index] for h in hs], [c[index] for c in cs])
