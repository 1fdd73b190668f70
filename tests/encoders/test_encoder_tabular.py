"""Tabular encoders: empty numeric or categorical parts, missing values, unseen categories."""

from __future__ import annotations

import pytest
import torch
from specs import build_encoder, random_input

import fusiondx.encoders  # noqa: F401
from fusiondx.encoders._tabular import embedding_dim
from fusiondx.errors import ConfigError
from fusiondx.registry import ENCODERS
from fusiondx.types import ModalitySpec

TABULAR = [e.name for e in ENCODERS.entries() if e.meta["kind"] == "tabular"]


@pytest.mark.parametrize("name", TABULAR)
@pytest.mark.parametrize(
    "n_numeric,cards",
    [(0, (3, 4)), (2, ()), (1, (2,))],
    ids=["no_numeric", "no_categorical", "one_each"],
)
def test_empty_parts(name: str, n_numeric: int, cards: tuple[int, ...]) -> None:
    spec = ModalitySpec("t", "tabular", n_numeric=n_numeric, cardinalities=cards)
    enc = build_encoder(name, spec, out_dim=6)
    x = random_input(spec, 3, missing_rows=(1,))
    out = enc(x)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    out.sum().backward()
    tokens = enc.forward_tokens(x)
    assert tokens.shape[0] == 3 and tokens.shape[2] == 6


@pytest.mark.parametrize("name", TABULAR)
def test_no_columns_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="no columns"):
        build_encoder(name, ModalitySpec("t", "tabular", n_numeric=0, cardinalities=()))


@pytest.mark.parametrize("name", TABULAR)
def test_value_under_a_missing_flag_is_ignored(name: str) -> None:
    spec = ModalitySpec("t", "tabular", n_numeric=3, cardinalities=(4,))
    enc = build_encoder(name, spec).eval()
    x = random_input(spec, 2)
    x["numeric_missing"][:, 0] = 1.0
    y = {k: v.clone() for k, v in x.items()}
    y["numeric"][:, 0] = 123.0  # a fill value the data layer may have left
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc(y))


@pytest.mark.parametrize("name", TABULAR)
def test_out_of_range_category_reads_as_unseen(name: str) -> None:
    spec = ModalitySpec("t", "tabular", n_numeric=1, cardinalities=(4,))
    enc = build_encoder(name, spec).eval()
    x = random_input(spec, 2)
    x = {k: v[:1].repeat(2, 1) for k, v in x.items()}  # two identical rows but for the category
    x["categorical"][:, 0] = torch.tensor([7, 1])
    with torch.no_grad():
        out = enc(x)
    torch.testing.assert_close(out[0], out[1])


def test_ft_transformer_tokens_are_features() -> None:
    spec = ModalitySpec("t", "tabular", n_numeric=3, cardinalities=(4, 5))
    enc = build_encoder("ft_transformer", spec, out_dim=6)
    assert enc.forward_tokens(random_input(spec, 2)).shape == (2, 5, 6)


def test_embedding_dim_rule() -> None:
    assert [embedding_dim(c) for c in (1, 2, 4, 9, 100)] == [1, 1, 2, 5, 16]
