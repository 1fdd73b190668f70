"""Network pieces shared by encoders, fusions, heads and objectives: masked pooling, transformer
blocks, the contrastive loss.

Lives at the package level, below ``encoders/``, ``fusion/`` and ``heads/``, so each of them can
import it without importing the other.

Attention-weight dropout is set here in one place for every transformer in the package.
``nn.TransformerEncoderLayer`` applies its ``dropout`` both to the residual branches and to the
attention weights. Dropout on the weights makes every layer materialise the attention matrix and
draw a random mask over it instead of running the fused attention kernel; on a CPU that was about
12% of the default model's training step (BENCHMARKS.md). The encoders and fusions therefore
take a separate ``attention_dropout``, 0 by default, and keep ``dropout`` for the rest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.errors import ConfigError


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` (B, T, D) over the True positions of ``mask`` (B, T); zeros for empty rows."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
    # clamp: a row without any real token (a missing-modality placeholder) pools to zeros, not NaN
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (the CLIP loss; Radford et al., ICML 2021) of paired rows of ``a`` and ``b``.

    ``a`` and ``b`` are (N, D) L2-normalised; row i of each is one case (the positive pair), every
    other row of the batch a negative. The loss is the mean of the cross-entropies a -> b and
    b -> a over the logits ``exp(logit_scale) * a @ b.T``, with ``logit_scale`` clamped at
    log(100) as in CLIP so that the learned temperature cannot collapse.
    """
    logits = a @ b.T * logit_scale.clamp(max=math.log(100.0)).exp()
    labels = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def set_attention_dropout(module: nn.Module, p: float) -> None:
    """Dropout ``p`` on the attention weights of every ``nn.MultiheadAttention`` in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = p


def check_heads(width: int, num_heads: int, *, owner: str, width_name: str = "d_model") -> None:
    """Raise a ConfigError unless ``num_heads`` divides the attention ``width``."""
    if num_heads <= 0 or width % num_heads:
        raise ConfigError(
            f"{owner} {width_name} {width} is not divisible by num_heads {num_heads}",
            fix=f"pick num_heads dividing {width_name}",
        )


def transformer_layer(
    width: int,
    num_heads: int,
    dim_feedforward: int,
    *,
    dropout: float,
    attention_dropout: float = 0.0,
    activation: str = "relu",
    owner: str,
    width_name: str = "d_model",
) -> nn.TransformerEncoderLayer:
    """One pre-norm, batch-first ``nn.TransformerEncoderLayer`` with its own attention dropout."""
    check_heads(width, num_heads, owner=owner, width_name=width_name)
    layer = nn.TransformerEncoderLayer(
        width,
        num_heads,
        dim_feedforward=dim_feedforward,
        dropout=dropout,
        activation=activation,
        batch_first=True,
        norm_first=True,
    )
    set_attention_dropout(layer, attention_dropout)
    return layer


def transformer_encoder(
    width: int,
    num_heads: int,
    num_layers: int,
    *,
    dim_feedforward: int,
    dropout: float,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    final_norm: bool = True,
    owner: str,
    width_name: str = "d_model",
) -> nn.TransformerEncoder:
    """``num_layers`` pre-norm transformer layers, optionally followed by a LayerNorm.

    A pre-norm stack leaves its output unnormalised, hence ``final_norm`` for the encoders that
    read it directly; the fusions that normalise in their read-out head skip it.
    """
    layer = transformer_layer(
        width,
        num_heads,
        dim_feedforward,
        dropout=dropout,
        attention_dropout=attention_dropout,
        activation=activation,
        owner=owner,
        width_name=width_name,
    )
    return nn.TransformerEncoder(
        layer,
        num_layers,
        norm=nn.LayerNorm(width) if final_norm else None,
        enable_nested_tensor=False,
    )
