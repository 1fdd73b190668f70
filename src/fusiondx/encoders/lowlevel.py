"""Shallow input-level projections, one per modality kind, for early (input-level) fusion.

Early fusion joins the modalities before any deep per-modality processing (Baltrusaitis et al.,
2019; Huang et al., 2020, "Fusion of medical imaging and electronic health records"). These
encoders therefore only pool the raw input to a fixed small size and apply one linear map; the
depth lives in the fusion network that follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx._nn import masked_mean
from fusiondx.encoders._base import Encoder
from fusiondx.encoders._image import check_spatial_dims
from fusiondx.encoders._tabular import CategoricalEmbeddings, check_columns, embedding_dim, unpack
from fusiondx.registry import register_encoder


@register_encoder("image_lowlevel", aliases=("lowlevel_image",))
class LowLevelImageEncoder(Encoder):
    """Low-level image projection: average-pool to a small grid, flatten, one linear layer.

    For early fusion: the image is reduced to ``grid`` x ``grid`` (x ``grid``) mean intensities
    per channel, a thumbnail, which one linear map projects to ``out_dim``.

    Args:
        in_channels: image channels.
        spatial_dims: 2 or 3.
        out_dim: embedding width.
        dropout: dropout on the pooled pixels (off by default: a pure projection).
        grid: side of the pooled grid; default 8 in 2D and 4 in 3D.
    """

    kind = "image"
    image_dims = (2, 3)
    lowlevel = True

    def __init__(
        self,
        *,
        in_channels: int,
        spatial_dims: int = 2,
        out_dim: int = 128,
        dropout: float = 0.0,
        grid: int | None = None,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims, "image_lowlevel", self.image_dims)
        g = grid if grid is not None else (8 if spatial_dims == 2 else 4)
        self.grid = g
        self.size = (g,) * spatial_dims
        self.spatial_dims = spatial_dims
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_channels * g**spatial_dims, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.adaptive_avg_pool2d if self.spatial_dims == 2 else F.adaptive_avg_pool3d
        return self.proj(self.dropout(pool(x, self.grid).flatten(1)))


@register_encoder("signal_lowlevel", aliases=("lowlevel_signal",))
class LowLevelSignalEncoder(Encoder):
    """Low-level signal projection: average-pool each lead to a few steps, one linear layer.

    For early fusion: every lead is reduced to ``steps`` window means (an envelope of the
    record), which one linear map projects to ``out_dim``.

    Args:
        in_channels: leads.
        out_dim: embedding width.
        dropout: dropout on the pooled samples (off by default: a pure projection).
        steps: window means kept per lead.
    """

    kind = "signal"
    lowlevel = True

    def __init__(
        self, *, in_channels: int, out_dim: int = 128, dropout: float = 0.0, steps: int = 32
    ) -> None:
        super().__init__()
        self.steps = steps
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_channels * steps, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(F.adaptive_avg_pool1d(x, self.steps).flatten(1)))


@register_encoder("text_lowlevel", aliases=("lowlevel_text",))
class LowLevelTextEncoder(Encoder):
    """Low-level text projection: mean of word vectors over real tokens, one linear layer.

    A bag of embeddings (the fastText idea, Joulin et al., 2017): word order is ignored, padding
    is excluded, and an all-padding text averages to zeros rather than NaN.

    Args:
        vocab_size: token ids are 0..vocab_size-1, 0 being padding.
        out_dim: embedding width.
        dropout: dropout on the averaged vector (off by default: a pure projection).
        embed_dim: word vector width.
    """

    kind = "text"
    lowlevel = True

    def __init__(
        self, *, vocab_size: int, out_dim: int = 128, dropout: float = 0.0, embed_dim: int = 32
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(embed_dim, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(masked_mean(self.embed(x), x != 0)))


@register_encoder("tabular_lowlevel", aliases=("lowlevel_tabular",))
class LowLevelTabularEncoder(Encoder):
    """Low-level tabular projection: numeric values, missing flags, category embeddings, one linear.

    For early fusion: the row as it is (plus small embeddings of width min(16, (card+1)//2) for
    the categorical columns) projected to ``out_dim`` by a single linear layer.

    Args:
        n_numeric: numeric columns.
        cardinalities: ids per categorical column (0 = missing, 1 = unseen category).
        out_dim: embedding width.
        dropout: dropout on the concatenated row (off by default: a pure projection).
    """

    kind = "tabular"
    lowlevel = True

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: Sequence[int],
        out_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_columns(n_numeric, cardinalities, "tabular_lowlevel")
        self.embeddings = CategoricalEmbeddings(
            cardinalities, [embedding_dim(c) for c in cardinalities]
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * n_numeric + self.embeddings.out_dim, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        num, miss, cat = unpack(x)
        return self.proj(self.dropout(torch.cat([num, miss, *self.embeddings(cat)], dim=1)))
