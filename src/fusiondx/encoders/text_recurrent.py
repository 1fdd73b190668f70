"""Recurrent text encoders: token embedding, then an LSTM or GRU over the unpadded tokens."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._sequence import Presets, RecurrentCore
from fusiondx.registry import register_encoder


def text_lengths(x: torch.Tensor) -> torch.Tensor:
    """Length of each row of token ids up to its last non-padding token (0 for all padding)."""
    pos = torch.arange(1, x.shape[1] + 1, device=x.device).expand_as(x)
    return torch.where(x != 0, pos, torch.zeros_like(pos)).amax(dim=1)


class _TextRecurrent(Presets, Encoder):
    """Embedding (padding id 0) -> packed RNN -> pooling over real tokens -> linear; each
    registered preset fixes the cell (and more).

    Args:
        vocab_size: token ids are 0..vocab_size-1, 0 being padding.
        out_dim: embedding width.
        dropout: dropout on the word vectors, between stacked RNN layers and before the
            projection.
        embed_dim: word vector width.
        hidden_size: RNN hidden width per direction.
        num_layers: stacked RNN layers.
        bidirectional: also run the RNN from the end of the text.
        pooling: ``last`` (final hidden state), ``mean`` or ``attention``.
        cell: ``lstm`` or ``gru`` (fixed by every preset).
    """

    kind = "text"

    def __init__(
        self,
        *,
        vocab_size: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        embed_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = RecurrentCore(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            cell=cell,
            bidirectional=bidirectional,
            pooling=pooling,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(self.rnn.out_dim, out_dim)
        self.out_dim = out_dim

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Packing keeps the padding out of the recurrence (and out of the final state).
        mask = x != 0
        return self.rnn(self.dropout(self.embed(x)), lengths=text_lengths(x), mask=mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._run(x)[1]))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self._run(x)[0]))  # (B, L, D)

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        return x != 0


@register_encoder("text_lstm")
class TextLSTMEncoder(_TextRecurrent):
    """LSTM text encoder (Hochreiter & Schmidhuber, 1997): word vectors, final hidden state.

    Padding is packed away (``pack_padded_sequence``), so the final state is the one after the
    last real token.
    """

    preset = {"cell": "lstm"}


@register_encoder("text_gru")
class TextGRUEncoder(_TextRecurrent):
    """GRU text encoder (Cho et al., 2014): word vectors, final hidden state.

    As ``text_lstm`` with gated recurrent units.
    """

    preset = {"cell": "gru"}


@register_encoder("text_bilstm_attention")
class TextBiLSTMAttentionEncoder(_TextRecurrent):
    """Bidirectional LSTM with additive attention over tokens (Yang et al., 2016, HAN word level).

    Every real token is scored by a small tanh layer against a learned context vector
    (Bahdanau et al., 2015); the embedding is the attention-weighted sum, padding excluded.
    """

    preset = {"cell": "lstm", "bidirectional": True, "pooling": "attention"}
