"""MLP encoder for tabular data: numeric values, missing flags and categorical embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fusiondx.encoders._base import Encoder
from fusiondx.encoders._tabular import CategoricalEmbeddings, check_columns, embedding_dim, unpack
from fusiondx.registry import register_encoder


@register_encoder("tabular_mlp", aliases=("mlp",))
class TabularMLPEncoder(Encoder):
    """MLP over numeric values, their missing flags and categorical embeddings (tabular baseline).

    Each categorical column gets an embedding of width min(16, (cardinality+1)//2) (the
    entity-embedding recipe of Guo & Berkhahn, 2016); everything is concatenated and passed
    through Linear-LayerNorm-ReLU-Dropout blocks, a strong baseline per Gorishniy et al. (2021).
    The missing flags let the network tell an absent lab value from a measured one.

    Args:
        n_numeric: numeric columns.
        cardinalities: ids per categorical column (0 = missing, 1 = unseen category).
        out_dim: embedding width.
        dropout: dropout after each hidden block.
        hidden_dim: width of the hidden blocks.
        num_layers: hidden blocks.
    """

    kind = "tabular"

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: Sequence[int],
        out_dim: int = 128,
        dropout: float = 0.1,
        hidden_dim: int = 128,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        check_columns(n_numeric, cardinalities, "tabular_mlp")
        self.embeddings = CategoricalEmbeddings(
            cardinalities, [embedding_dim(c) for c in cardinalities]
        )
        # LayerNorm rather than BatchNorm: a last training batch of one case must not fail.
        layers: list[nn.Module] = []
        width = 2 * n_numeric + self.embeddings.out_dim
        for _ in range(num_layers):
            layers += [
                nn.Linear(width, hidden_dim),
                nn.LayerNorm(hidden_dim),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = hidden_dim
        layers.append(nn.Linear(width, out_dim))
        self.mlp = nn.Sequential(*layers)
        self.out_dim = out_dim
        self._hidden = [hidden_dim] * num_layers

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        num, miss, cat = unpack(x)
        return self.mlp(torch.cat([num, miss, *self.embeddings(cat)], dim=1))

    def forward_levels(self, x: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        num, miss, cat = unpack(x)
        h = torch.cat([num, miss, *self.embeddings(cat)], dim=1)
        levels = []
        for i, module in enumerate(self.mlp):
            h = module(h)
            if i % 4 == 2 and i < len(self.mlp) - 1:  # after each hidden block's ReLU
                levels.append(h)
        return [*levels, h]

    def level_dims(self) -> list[int]:
        return [*self._hidden, self.out_dim]
