"""Text encoders: padding never counts, all-padding rows, sequence helpers."""

from __future__ import annotations

import pytest
import torch
from specs import build_encoder, small_spec
from torch.utils.flop_counter import FlopCounterMode

import fusiondx.encoders  # noqa: F401
from fusiondx.encoders._sequence import AdditiveAttentionPool, masked_mean
from fusiondx.encoders.text_recurrent import text_lengths
from fusiondx.errors import ConfigError
from fusiondx.registry import ENCODERS

TEXT = [
    pytest.param(e.name, marks=[pytest.mark.optional] if "optional" in e.tags else [], id=e.name)
    for e in ENCODERS.entries()
    if e.meta["kind"] == "text"
]


def _build(name: str):
    for module in ENCODERS.get(name).meta.get("requires", ()):
        pytest.importorskip(module)
    torch.manual_seed(0)
    return build_encoder(name, small_spec("text")).eval()


@pytest.mark.parametrize("name", TEXT)
def test_trailing_padding_does_not_change_the_embedding(name: str) -> None:
    enc = _build(name)
    short = torch.tensor([[5, 9, 3, 0, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0, 0, 0]])
    long = torch.cat([short, torch.zeros(2, 4, dtype=torch.long)], dim=1)  # L = 12 = max_length
    with torch.no_grad():
        torch.testing.assert_close(enc(short), enc(long), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", TEXT)
def test_all_padding_batch(name: str) -> None:
    enc = _build(name)
    x = torch.zeros(2, 12, dtype=torch.long)
    with torch.no_grad():
        assert torch.isfinite(enc(x)).all()
        assert torch.isfinite(enc.forward_tokens(x)).all()
    mask = enc.token_mask(x)
    assert mask is None or not mask.any()


def test_text_transformer_rejects_too_long_input() -> None:
    enc = _build("text_transformer")
    with pytest.raises(ConfigError, match="max_length"):
        enc(torch.ones(1, 13, dtype=torch.long))


def test_text_lengths_count_up_to_the_last_real_token() -> None:
    x = torch.tensor([[3, 4, 0, 0], [0, 0, 0, 0], [1, 0, 2, 0]])
    assert text_lengths(x).tolist() == [2, 0, 3]


def test_masked_mean_and_attention_pool_ignore_padding() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    h2 = h.clone()
    h2[~mask] = 99.0
    pool = AdditiveAttentionPool(4, 8)
    for f in (masked_mean, pool):
        a, b = f(h, mask), f(h2, mask)
        torch.testing.assert_close(a, b)
        assert torch.all(a[1] == 0)
    torch.testing.assert_close(masked_mean(h, mask)[0], h[0, :3].mean(0))


def test_bilstm_attention_fixes_its_architecture() -> None:
    enc = _build("text_bilstm_attention")
    assert "bidirectional" not in enc.get_config() and "pooling" not in enc.get_config()
    assert enc.rnn.rnn.bidirectional and enc.rnn.pooling == "attention"


def test_text_transformer_with_no_layer_is_a_bag_of_embeddings() -> None:
    torch.manual_seed(0)
    spec = small_spec("text")
    enc = build_encoder("text_transformer", spec, num_layers=0).eval()
    assert len(enc.transformer.layers) == 0
    x = torch.tensor([[5, 9, 3, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        h = enc.transformer.norm(enc.embed(x) + enc.pos[:, : x.shape[1]])
        expected = enc.proj(masked_mean(h, x != 0))
        torch.testing.assert_close(enc(x), expected)
        assert enc.forward_tokens(x).shape == (2, 8, 10)
        levels = enc.forward_levels(x)
    assert len(levels) == 1 and enc.level_dims() == [10]
    torch.testing.assert_close(levels[0], expected)
    # The only matrix product left is the projection.
    counter = FlopCounterMode(display=False)
    with counter:
        enc(x[:1])
    assert counter.get_total_flops() == 2 * enc.proj.in_features * 10
    with pytest.raises(ConfigError, match="num_layers"):
        build_encoder("text_transformer", spec, num_layers=-1)
