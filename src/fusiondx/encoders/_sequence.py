"""Building blocks shared by the sequence encoders (signal and text): RNN core, pooling, stems,
and the preset mechanism of the recurrent encoder families.

Not registered: the encoders in ``signal_*.py`` and ``text_*.py`` compose these.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusiondx._nn import masked_mean

RNN_CELLS = ("lstm", "gru")
POOLINGS = ("last", "mean", "attention")


class Presets:
    """Mixin for a family of encoders that share one constructor and differ in a few options.

    A subclass sets ``preset`` (option -> value, e.g. ``{"cell": "gru"}``); its constructor is the
    family's with those options fixed: it no longer takes them, and ``get_config()`` and the docs
    table do not list them. Put the mixin before the family's base class.
    """

    preset: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "preset" in cls.__dict__ and "__init__" not in cls.__dict__:
            family_init, fixed = super(cls, cls).__init__, dict(cls.preset)
            sig = inspect.signature(family_init)

            def __init__(self: Any, **options: Any) -> None:
                family_init(self, **options, **fixed)

            __init__.__signature__ = sig.replace(  # type: ignore[attr-defined]
                parameters=[p for p in sig.parameters.values() if p.name not in fixed]
            )
            cls.__init__ = __init__  # type: ignore[method-assign]
        super().__init_subclass__(**kwargs)  # after: Configurable records the preset's constructor


def check_choice(value: str, choices: tuple[str, ...], *, option: str, owner: str) -> None:
    """Raise a ConfigError when ``value`` is not one of ``choices``."""
    if value not in choices:
        from fusiondx.errors import ConfigError, did_you_mean

        raise ConfigError(
            f"{owner}: option '{option}' is '{value}'.{did_you_mean(value, choices)}",
            fix=f"use one of: {', '.join(choices)}",
        )


class AdditiveAttentionPool(nn.Module):
    """Additive attention pooling over time (Bahdanau et al. 2015; Yang et al. 2016, HAN).

    ``u_t = tanh(W h_t + b)``, ``a_t = softmax_t(u_t . v)``, output ``sum_t a_t h_t``. Padding
    positions get no weight; a row with no real position pools to zeros.

    Args:
        dim: width of the pooled vectors.
        attn_dim: width of the hidden scoring layer.
    """

    def __init__(self, dim: int, attn_dim: int = 64) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim)
        self.context = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.context(torch.tanh(self.proj(h))).squeeze(-1)  # (B, T)
        if mask is None:
            return (scores.softmax(dim=1).unsqueeze(-1) * h).sum(dim=1)
        # A finite fill (not -inf) keeps all-padding rows NaN-free in forward and backward; the
        # multiplication by the mask then gives such rows zero weights.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=1) * mask.to(h.dtype)
        return (weights.unsqueeze(-1) * h).sum(dim=1)


class RecurrentCore(nn.Module):
    """An LSTM or GRU over (B, T, F) with optional lengths, plus pooling to one vector.

    With ``lengths`` the sequence is packed, so padding never enters the recurrence, and the
    returned outputs are zero at padded steps.

    Args:
        input_size: width of the input features.
        hidden_size: hidden width per direction.
        num_layers: stacked recurrent layers.
        cell: ``lstm`` or ``gru``.
        bidirectional: run a backward RNN too (outputs are twice as wide).
        pooling: ``last`` (final hidden state), ``mean`` (masked mean of outputs) or
            ``attention`` (additive attention pooling).
        dropout: dropout between stacked layers.
        attn_dim: width of the attention scoring layer.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        pooling: str = "last",
        dropout: float = 0.0,
        attn_dim: int = 64,
    ) -> None:
        super().__init__()
        check_choice(cell, RNN_CELLS, option="cell", owner="recurrent encoder")
        check_choice(pooling, POOLINGS, option="pooling", owner="recurrent encoder")
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.pooling = pooling
        self.num_directions = 2 if bidirectional else 1
        self.out_dim = hidden_size * self.num_directions
        self.attn = (
            AdditiveAttentionPool(self.out_dim, attn_dim) if pooling == "attention" else None
        )

    def sequence(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the RNN: outputs (B, T, out_dim) and the last layer's final states (B, out_dim)."""
        if lengths is None:
            out, h = self.rnn(x)
        else:
            total = x.shape[1]
            # an all-padding row still needs length >= 1 to be packed; its output is masked later
            packed = pack_padded_sequence(
                x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
            )
            out, h = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=total)
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        last = h[-self.num_directions :].transpose(0, 1).reshape(x.shape[0], -1)  # (B, out_dim)
        return out, last

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (B, T, out_dim) and the pooled vector (B, out_dim)."""
        out, last = self.sequence(x, lengths)
        if self.pooling == "last":
            pooled = last
            if mask is not None:
                pooled = pooled * mask.any(dim=1, keepdim=True).to(pooled.dtype)
        elif self.pooling == "mean":
            pooled = masked_mean(out, mask)
        else:
            assert self.attn is not None
            pooled = self.attn(out, mask)
        return out, pooled


class ConvStem1d(nn.Module):
    """Strided Conv1d-BN-ReLU blocks that shorten a signal by ``downsample`` (a power of two).

    Args:
        in_channels: input leads.
        width: output channels.
        downsample: total stride; each block halves the length.
        kernel_size: kernel of each block.
    """

    def __init__(self, in_channels: int, width: int, *, downsample: int = 8, kernel_size: int = 7):
        super().__init__()
        n_blocks = int(round(math.log2(downsample))) if downsample > 1 else 0
        if 2**n_blocks != downsample:
            from fusiondx.errors import ConfigError

            raise ConfigError(
                f"signal stem downsample is {downsample}, not a power of two",
                fix="use 1, 2, 4, 8, 16 or 32",
            )
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(max(n_blocks, 1)):
            stride = 2 if n_blocks else 1
            layers += [
                nn.Conv1d(
                    c, width, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
                ),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
            c = width
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, width, T / downsample)
        return self.net(x)
