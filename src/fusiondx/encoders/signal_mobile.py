"""A depthwise-separable 1D CNN for multi-lead signals: the signal twin of ``image_mobilenet``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fusiondx.encoders._base import Encoder, pooled_stages
from fusiondx.registry import register_encoder


def _separable(c_in: int, c_out: int, kernel_size: int, stride: int) -> list[nn.Module]:
    """Depthwise conv over time (one filter per lead/channel), then a pointwise 1x1 mix."""
    return [
        nn.Conv1d(
            c_in,
            c_in,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=c_in,
            bias=False,
        ),
        nn.BatchNorm1d(c_in),
        nn.ReLU6(inplace=True),
        nn.Conv1d(c_in, c_out, 1, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU6(inplace=True),
    ]


@register_encoder("signal_mobile", aliases=("dwconv1d",))
class MobileSignalEncoder(Encoder):
    """Depthwise-separable 1D CNN over (B, C, T) signals, global average pooling.

    A strided stem convolution, then stages of depthwise-separable convolutions (Howard et al.,
    2017, "MobileNets"): a depthwise kernel per channel over time followed by a 1x1 pointwise
    mix, each stage halving the length. A separable stage costs ``C (k + C')`` multiply-adds per
    position against ``k C C'`` for a full convolution, about k times fewer at equal widths,
    which is what makes it the ``efficient`` preset's ECG encoder.

    Args:
        in_channels: leads.
        out_dim: embedding width.
        dropout: dropout before the projection.
        widths: channels of the stem and of each separable stage; each halves the length.
        kernel_size: kernel of the stem and of every depthwise convolution.
    """

    kind = "signal"

    def __init__(
        self,
        *,
        in_channels: int,
        out_dim: int = 128,
        dropout: float = 0.1,
        widths: Sequence[int] = (16, 32, 64, 64),
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("signal_mobile needs at least one width")
        c = widths[0]
        layers: list[nn.Module] = [
            nn.Conv1d(in_channels, c, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(c),
            nn.ReLU6(inplace=True),
        ]
        self._ends = [len(layers) - 1]
        for w in widths[1:]:
            layers += _separable(c, w, kernel_size, stride=2)
            self._ends.append(len(layers) - 1)
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
        pooled, fmap = pooled_stages(self.features, x, self._ends[:-1])
        return [*pooled, self.proj(self.dropout(fmap.mean(dim=2)))]

    def level_dims(self) -> list[int]:
        return [*self._widths[:-1], self.out_dim]
