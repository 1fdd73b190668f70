"""Recurrent signal encoders: a strided Conv1d stem, then an LSTM or GRU."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._sequence import ConvStem1d, RecurrentCore
from fusiondx.registry import register_encoder


class _SignalRecurrent(Encoder):
    """Conv stem -> RNN -> pooling -> linear; subclasses pick the recurrent cell.

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
    """

    kind = "signal"
    cell = "lstm"

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
    ) -> None:
        super().__init__()
        # The stem makes the RNN affordable: 1000 raw steps are slow to backpropagate through.
        self.stem = ConvStem1d(in_channels, stem_width, downsample=downsample)
        self.rnn = RecurrentCore(
            stem_width,
            hidden_size,
            num_layers=num_layers,
            cell=self.cell,
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


@register_encoder("lstm", kind="signal", tags={"tokens"})
class SignalLSTMEncoder(_SignalRecurrent):
    """LSTM (Hochreiter & Schmidhuber, 1997) over a strided Conv1d stem; final state as embedding.

    The convolution-then-recurrence design of CRNN ECG classifiers (e.g. Zihlmann et al., 2017):
    the stem shortens the record, the LSTM models rhythm over the shortened sequence.
    """

    cell = "lstm"


@register_encoder("gru", kind="signal", tags={"tokens"})
class SignalGRUEncoder(_SignalRecurrent):
    """GRU (Cho et al., 2014) over a strided Conv1d stem; final state as embedding.

    As ``lstm`` with gated recurrent units, which have fewer parameters and train faster.
    """

    cell = "gru"


@register_encoder("bilstm_attention", kind="signal", tags={"tokens"})
class SignalBiLSTMAttentionEncoder(_SignalRecurrent):
    """Bidirectional LSTM with additive attention pooling over a strided Conv1d stem.

    Attention pooling as in Bahdanau et al. (2015) and Yang et al. (2016): every time step is
    scored, and the embedding is the attention-weighted sum, so informative beats dominate.

    Args:
        in_channels: leads.
        out_dim: embedding width.
        dropout: dropout between stacked RNN layers and before the projection.
        stem_width: channels of the Conv1d stem.
        downsample: how much the stem shortens the signal (a power of two).
        hidden_size: LSTM hidden width per direction.
        num_layers: stacked LSTM layers.
    """

    cell = "lstm"

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
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_dim=out_dim,
            dropout=dropout,
            stem_width=stem_width,
            downsample=downsample,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=True,
            pooling="attention",
        )
