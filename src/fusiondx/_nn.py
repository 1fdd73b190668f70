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

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.errors import ConfigError


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` (B, T, D) over the True positions of ``mask`` (B, T); zeros for empty rows.

    Masked positions are replaced, not multiplied away: a non-finite placeholder there cannot
    leak into the mean or its gradient.
    """
    if mask is None:
        return x.mean(dim=1)
    kept = torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x)).sum(dim=1)
    # clamp: a row without any real token (a missing-modality placeholder) pools to zeros, not NaN
    return kept / mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)


MAX_LOGIT_SCALE = 100.0
"""CLIP clips its learned logit scale (1 / temperature) at 100 so that training stays stable."""


def clip_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """``exp(log_scale)`` capped at :data:`MAX_LOGIT_SCALE`, as CLIP learns its temperature."""
    return log_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (the CLIP loss; Radford et al., ICML 2021) of N paired rows.

    ``a[i]`` matches ``b[i]``, every other row of the batch is a negative. ``logits = scale *
    a @ b.T``; the loss is the mean of the cross-entropy of each row (a case's ``a`` must pick its
    own ``b`` among the N) and of each column. ``a`` and ``b`` should be L2-normalised so that
    the logits are scaled cosine similarities.
    """
    logits = scale * a @ b.T
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pairwise_info_nce(z: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """:func:`info_nce` between every pair of modalities over the cases where both are present,
    averaged over the pairs that have at least two such cases (0 when none has).

    ``z`` (B, M, d) normalised, zero where absent; ``mask`` (B, M). Computed for all pairs at
    once on the whole batch, other cases masked out of each softmax, so a batch needs no
    host synchronisation to find its pairs.
    """
    zt = z.transpose(0, 1)  # (M, B, d)
    logits = scale * torch.einsum("ibd,jcd->ijbc", zt, zt)  # (M, M, B, B): row b of i vs col c of j
    present = mask.T  # (M, B)
    both = present.unsqueeze(1) & present.unsqueeze(0)  # (M, M, B): cases where i and j are
    # Only cases of the pair compete in a row's softmax; the finite fill keeps a row of a pair
    # without cases finite (it is masked out below).
    masked = logits.masked_fill(~both.unsqueeze(-2), torch.finfo(logits.dtype).min)
    # Row b of ordered pair (i, j): case b's modality i must find its own modality j. Pair (j, i)
    # is the column direction of (i, j), so the mean over ordered pairs is the symmetric loss.
    row_ce = torch.logsumexp(masked, dim=-1) - torch.diagonal(logits, dim1=-2, dim2=-1)
    row_ce = torch.where(both, row_ce, torch.zeros_like(row_ce))
    n = both.sum(dim=-1)  # (M, M) cases per pair
    off_diag = ~torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
    counted = off_diag & (n >= 2)
    per_pair = row_ce.sum(dim=-1) / n.clamp_min(1).to(z.dtype)
    per_pair = torch.where(counted, per_pair, torch.zeros_like(per_pair))
    return per_pair.sum() / counted.sum().clamp_min(1).to(z.dtype)


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
