"""Helpers shared by the tabular encoders (not registered): input unpacking, categorical tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fusiondx.errors import ConfigError


def embedding_dim(cardinality: int, cap: int = 16) -> int:
    """The usual rule of thumb for a categorical column's embedding width: min(cap, (card+1)//2)."""
    return max(1, min(cap, (cardinality + 1) // 2))


def check_columns(n_numeric: int, cardinalities: Sequence[int], owner: str) -> None:
    """Raise a ConfigError for a tabular modality without columns or with a bad cardinality."""
    if n_numeric < 0 or n_numeric + len(cardinalities) == 0:
        raise ConfigError(
            f"tabular encoder '{owner}' got no columns (n_numeric={n_numeric}, no categorical)",
            fix="list at least one numeric or categorical column in the tabular modality",
        )
    if any(int(c) < 1 for c in cardinalities):
        raise ConfigError(
            f"tabular encoder '{owner}' got cardinalities {list(cardinalities)}; each must be >= 1",
            fix="count the ids of each categorical column, including 0 (missing) and 1 (unseen)",
        )


def unpack(x: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``numeric`` (B, N), ``numeric_missing`` (B, N), ``categorical`` (B, K) of a tabular batch.

    Absent keys read as empty columns. Numeric values flagged missing are zeroed, so that a
    placeholder fill value never reaches the network as data.
    """
    ref = next((t for t in x.values() if isinstance(t, torch.Tensor)), None)
    if ref is None:
        raise ValueError("a tabular input needs 'numeric' or 'categorical' tensors")
    b, dev = ref.shape[0], ref.device
    num = x.get("numeric")
    num = num.float() if num is not None else torch.zeros(b, 0, device=dev)
    miss = x.get("numeric_missing")
    miss = miss.to(num.dtype) if miss is not None else torch.zeros_like(num)
    cat = x.get("categorical")
    cat = cat.long() if cat is not None else torch.zeros(b, 0, dtype=torch.long, device=dev)
    return num * (1.0 - miss), miss, cat


class CategoricalEmbeddings(nn.Module):
    """One ``nn.Embedding`` per categorical column; id 0 (missing) has its own learned vector.

    Args:
        cardinalities: number of ids of each column (ids 0..card-1).
        dims: embedding width of each column.
    """

    def __init__(self, cardinalities: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        self.cardinalities = [int(c) for c in cardinalities]
        self.tables = nn.ModuleList(
            nn.Embedding(c, d) for c, d in zip(self.cardinalities, dims, strict=True)
        )
        self.out_dim = int(sum(dims))

    def forward(self, cat: torch.Tensor) -> list[torch.Tensor]:  # K tensors (B, d_k)
        out = []
        for k, (card, table) in enumerate(zip(self.cardinalities, self.tables, strict=True)):
            ids = cat[:, k]
            # An id past the fitted vocabulary is by definition a category unseen in training (1).
            ids = torch.where(
                (ids >= 0) & (ids < card), ids, torch.full_like(ids, min(1, card - 1))
            )
            out.append(table(ids))
        return out
