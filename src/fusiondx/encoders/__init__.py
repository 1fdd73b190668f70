"""Modality encoders: one modality's tensor -> an embedding (B, D) and, where tagged, tokens.

Importing this package registers every encoder (``fusiondx list encoders`` shows them).
"""

from __future__ import annotations

from fusiondx.encoders import (
    image_cnn,
    image_densenet,
    image_mobilenet,
    image_resnet,
    image_vit,
    lowlevel,
    signal_cnn,
    signal_recurrent,
    signal_transformer,
    tabular_ft_transformer,
    tabular_mlp,
    text_minilm,
    text_recurrent,
    text_transformer,
)
from fusiondx.encoders._base import Encoder
from fusiondx.encoders.text_minilm import minilm_tokenizer_path

__all__ = [
    "Encoder",
    "image_cnn",
    "image_densenet",
    "image_mobilenet",
    "image_resnet",
    "image_vit",
    "lowlevel",
    "minilm_tokenizer_path",
    "signal_cnn",
    "signal_recurrent",
    "signal_transformer",
    "tabular_ft_transformer",
    "tabular_mlp",
    "text_minilm",
    "text_recurrent",
    "text_transformer",
]
