"""Text: Integrated Gradients on the token embeddings (captum's ``LayerIntegratedGradients``),
one signed score per token, highlighted inline in the report text."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fusiondx.explanations._target import Target, modality_function
from fusiondx.models.multimodal import MultimodalModel


@dataclass
class TokenScores:
    """The real (non-padding) tokens of one text and their attributions.

    ``spans`` are the tokens' (start, end) character offsets in ``text`` when the tokenizer
    gives them back for this text, else None (the tokens are then shown one after another).
    """

    tokens: list[str]
    scores: np.ndarray  # (T,)
    text: str | None = None
    spans: list[tuple[int, int]] | None = None


def embedding_layer(model: MultimodalModel, modality: str) -> nn.Embedding | None:
    """The encoder's token embedding table (the first ``nn.Embedding`` in it)."""
    return next(
        (m for m in model.encoders[modality].modules() if isinstance(m, nn.Embedding)), None
    )


def token_attribution(
    model: MultimodalModel,
    target: Target,
    inputs: Mapping[str, Any],
    mask: torch.Tensor,
    modality: str,
    n_steps: int = 32,
) -> np.ndarray:
    """(B, L) attribution of every token position (0 at padding), against the embeddings of a
    text of padding only (the padding mask stays the case's own)."""
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    ids = inputs[modality]
    f = modality_function(model, target, inputs, mask, modality)
    layer = embedding_layer(model, modality)
    if layer is None:  # an encoder that takes ids without an embedding table (none yet)
        x = ids.float()
        attr = IntegratedGradients(lambda v: f(v.long())).attribute(x, torch.zeros_like(x))
        return attr.detach().numpy() * (ids != 0).numpy()
    lig = LayerIntegratedGradients(f, layer)
    attr = lig.attribute(ids, baselines=torch.zeros_like(ids), n_steps=n_steps)
    scores = attr.sum(-1).detach().numpy()
    return scores * (ids != 0).numpy()


def token_scores(
    ids: np.ndarray, scores: np.ndarray, tokenizer: Any, text: str | None
) -> TokenScores:
    """Pair one case's token ids (L,) and scores (L,) with their strings (and offsets in ``text``
    when re-tokenising ``text`` gives the very same ids)."""
    real = np.flatnonzero(ids != 0)
    tokens = [str(tokenizer.id_to_token(int(ids[i]))) for i in real]
    out = TokenScores(tokens, scores[real].astype(float))
    if text is not None:
        enc = tokenizer.encode(text)
        if list(enc.ids) == [int(i) for i in ids]:
            out.text = text
            out.spans = [(int(enc.offsets[i][0]), int(enc.offsets[i][1])) for i in real]
    return out


def _colour(v: float, top: float) -> str:
    a = min(abs(v) / top, 1.0) * 0.85 if top > 0 else 0.0
    rgb = "213,94,0" if v >= 0 else "0,114,178"
    return f"rgba({rgb},{a:.2f})"


def token_html(ts: TokenScores) -> str:
    """The text with each token's background coloured by its score (orange up, blue down)."""
    top = float(np.abs(ts.scores).max()) if len(ts.scores) else 0.0

    def span(piece: str, v: float) -> str:
        return (
            f'<span class="tok" style="background:{_colour(v, top)}" title="{v:+.4f}">'
            f"{html.escape(piece)}</span>"
        )

    if ts.text is not None and ts.spans is not None:
        parts, at = [], 0
        for (a, b), v in zip(ts.spans, ts.scores, strict=True):
            a = max(a, at)
            parts.append(html.escape(ts.text[at:a]))
            parts.append(span(ts.text[a:b], float(v)))
            at = max(at, b)
        parts.append(html.escape(ts.text[at:]))
        return "".join(parts)
    return " ".join(span(t, float(v)) for t, v in zip(ts.tokens, ts.scores, strict=True))
