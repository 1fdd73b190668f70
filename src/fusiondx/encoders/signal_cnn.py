"""A 1D CNN for multi-lead physiological signals (ECG, EEG)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fusiondx.encoders._base import Encoder, pooled_stages
from fusiondx.registry import register_encoder


@register_encoder("signal_cnn", aliases=("cnn1d",))
class CNN1dEncoder(Encoder):
    """1D CNN over (B, C, T) signals: strided conv-BN-ReLU stages, global average pooling.

    The fully convolutional time-series baseline of Wang et al. (2017), with strided
    convolutions so that a 1000-sample record shrinks to ~63 positions after four stages; the
    embedding is the average over time projected to ``out_dim``, the tokens are the projected
    positions.

    Args:
        in_channels: leads.
        out_dim: embedding width.
        dropout: dropout before the projection.
        widths: channels of each stage; each stage halves the length.
        kernel_size: kernel of every convolution.
    """

    kind = "signal"

    def __init__(
        self,
        *,
        in_channels: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        widths: Sequence[int] = (32, 64, 128, 128),
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [
                nn.Conv1d(c, w, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(w),
                nn.ReLU(inplace=True),
            ]
            c = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(c, out_dim)
        self.out_dim = out_dim
        self._widths = list(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self.features(x).mean(dim=2)))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self.features(x).transpose(1, 2)))  # (B, T', D)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        ends = [3 * i + 2 for i in range(len(self._widths) - 1)]
        pooled, fmap = pooled_stages(self.features, x, ends)
        return [*pooled, self.proj(self.dropout(fmap.mean(dim=2)))]

    def level_dims(self) -> list[int]:
        return [*self._widths[:-1], self.out_dim]
