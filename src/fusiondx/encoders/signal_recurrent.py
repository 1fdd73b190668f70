"""Recurrent signal encoders: a strided Conv1d stem, then an LSTM or GRU."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._sequence import ConvStem1d, Presets, RecurrentCore
from fusiondx.registry import register_encoder


class _SignalRecurrent(Presets, Encoder):
    """Conv stem -> RNN -> pooling -> linear; each registered preset fixes the cell (and more).

    Args:
        in_channels: leads.
        out_dim: embedding width.
        dropout: dropout between stacked RNN layers and before the projection.
        stem_width: channels of the Conv1d stem (the RNN input width).
        downsample: how much the stem shortens the signal (a power of two); 8 turns 1000
            samples into 125 RNN steps.
        hidden_size: RNN hidden width per direction.
        num_layers: stacked RNN layers.
        bidirectional: also run the RNN backwards in time.
        pooling: ``last`` (final hidden state), ``mean`` or ``attention``.
        cell: ``lstm`` or ``gru`` (fixed by every preset).
    """

    kind = "signal"

    def __init__(
        self,
        *,
        in_channels: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        stem_width: int = 32,
        downsample: int = 8,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        # The stem makes the RNN affordable: 1000 raw steps are slow to backpropagate through.
        self.stem = ConvStem1d(in_channels, stem_width, downsample=downsample)
        self.rnn = RecurrentCore(
            stem_width,
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, pooled = self.rnn(self.stem(x).transpose(1, 2))
        return self.proj(self.dropout(pooled))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn.sequence(self.stem(x).transpose(1, 2))
        return self.proj(self.dropout(out))  # (B, T / downsample, D)


@register_encoder("signal_lstm", aliases=("lstm",))
class SignalLSTMEncoder(_SignalRecurrent):
    """LSTM (Hochreiter & Schmidhuber, 1997) over a strided Conv1d stem; final state as embedding.

    The convolution-then-recurrence design of CRNN ECG classifiers (e.g. Zihlmann et al., 2017):
    the stem shortens the record, the LSTM models rhythm over the shortened sequence.
    """

    preset = {"cell": "lstm"}


@register_encoder("signal_gru", aliases=("gru",))
class SignalGRUEncoder(_SignalRecurrent):
    """GRU (Cho et al., 2014) over a strided Conv1d stem; final state as embedding.

    As ``signal_lstm`` with gated recurrent units, which have fewer parameters and train faster.
    """

    preset = {"cell": "gru"}


@register_encoder("signal_bilstm_attention", aliases=("bilstm_attention",))
class SignalBiLSTMAttentionEncoder(_SignalRecurrent):
    """Bidirectional LSTM with additive attention pooling over a strided Conv1d stem.

    Attention pooling as in Bahdanau et al. (2015) and Yang et al. (2016): every time step is
    scored, and the embedding is the attention-weighted sum, so informative beats dominate.
    """

    preset = {"cell": "lstm", "bidirectional": True, "pooling": "attention"}
