"""The encoder contract: one modality's tensor -> an embedding (B, D), optionally tokens (B, T, D)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from fusiondx.configurable import Configurable


class Encoder(Configurable, nn.Module):
    """Base class of every encoder.

    Subclasses set ``kind`` (``image``, ``signal``, ``text`` or ``tabular``), take the fitted
    modality spec fields they need (``in_channels``, ``spatial_dims``, ``image_size``, ``length``,
    ``vocab_size``, ``max_length``, ``n_numeric``, ``cardinalities``) plus ``out_dim`` and their own
    options as keyword arguments, and set ``self.out_dim``.

    Encoders with a natural token sequence override :meth:`forward_tokens`, returning a
    sequence of ``out_dim``-wide tokens for fusions that attend across modalities (tag
    ``tokens``).

    Encoders with several depths (conv stages, transformer layers, hidden blocks) override
    :meth:`forward_levels` and :meth:`level_dims` so that fusions can combine modalities at
    several depths, not only the last (``multilevel``; tag ``levels``).

    Image encoders override :meth:`forward_maps` and :meth:`map_channels`: the spatial feature
    map of every stage, for heads that read the image itself (localisation, segmentation; tag
    ``maps``).

    The registry's tags come from these overrides and the class attributes below
    (:meth:`part_tags`), never from the registration.
    """

    kind: ClassVar[str] = ""
    image_dims: ClassVar[tuple[int, ...]] = ()
    """Image encoders: the spatial dimensions they accept, checked on construction (tag ``3d``)."""
    lowlevel: ClassVar[bool] = False
    """A shallow projection of the raw input that early fusion feeds (tag ``lowlevel``)."""
    pretrained: ClassVar[bool] = False
    """Holds frozen pretrained weights (tag ``pretrained``)."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Modules beyond FusionDx's own dependencies (tag ``optional``)."""
    out_dim: int

    @classmethod
    def part_tags(cls) -> set[str]:
        """What the encoder can do, read off the class: the methods it overrides and its attributes."""
        overrides = {"tokens": "forward_tokens", "levels": "forward_levels", "maps": "forward_maps"}
        tags = {t for t, m in overrides.items() if getattr(cls, m) is not getattr(Encoder, m)}
        flags = {
            "3d": 3 in cls.image_dims,
            "lowlevel": cls.lowlevel,
            "pretrained": cls.pretrained,
            "optional": bool(cls.requires),
        }
        return tags | {t for t, on in flags.items() if on}

    def forward(self, x: Any) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def forward_tokens(self, x: Any) -> torch.Tensor:  # (B, T, D)
        """A sequence of ``out_dim``-wide tokens; by default the embedding as a single token.

        Encoders tagged ``tokens`` override this with their natural sequence (image patches or
        feature-map positions, signal time steps, text tokens, tabular feature tokens).
        """
        return self.forward(x).unsqueeze(1)

    def token_mask(self, x: Any) -> torch.Tensor | None:  # (B, T) bool, True = real token
        """Which tokens of :meth:`forward_tokens` are real (not padding); None when all are."""
        return None

    def forward_levels(self, x: Any) -> list[torch.Tensor]:  # [(B, d_1), ..., (B, out_dim)]
        """Pooled features from shallow to deep, the last being the embedding of :meth:`forward`.

        By default only the embedding: an encoder with a single meaningful depth has one level.
        """
        return [self.forward(x)]

    def level_dims(self) -> list[int]:
        """Widths of :meth:`forward_levels`, known without running the encoder."""
        return [self.out_dim]

    def forward_maps(self, x: Any) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The feature map of every stage and the embedding, from one pass.

        Returns ``(maps, embedding)``: the maps shallow (fine) to deep (coarse), each
        (B, C_i, *S_i) with C_i from :meth:`map_channels`, and the (B, out_dim) embedding that
        :meth:`forward` returns, so a model that needs both runs the encoder once.
        """
        raise NotImplementedError(self._no_maps())

    def map_channels(self) -> list[int]:
        """Channels of :meth:`forward_maps`' maps, shallow to deep, known without running."""
        raise NotImplementedError(self._no_maps())

    def _no_maps(self) -> str:
        from fusiondx.registry import ENCODERS, list_encoders

        list_encoders()  # registers every encoder, so the list below is complete
        name = getattr(type(self), "registered_name", type(self).__name__)
        able = ", ".join(e.name for e in ENCODERS.entries() if "maps" in e.tags)
        return (
            f"encoder '{name}' has no spatial feature maps; heads that read the image "
            f"(localization, segmentation) need an encoder tagged 'maps': {able}"
        )


def pooled_stages(
    stages: nn.Sequential, x: torch.Tensor, ends: list[int]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``stages`` on a (B, C, *S) input; the spatial means after the modules at ``ends``.

    Returns those pooled (B, C_i) features and the final feature map, in one pass.
    """
    pooled = []
    for i, module in enumerate(stages):
        x = module(x)
        if i in ends:
            pooled.append(x.flatten(2).mean(dim=2))
    return pooled, x


def transformer_layers(
    encoder: nn.TransformerEncoder, h: torch.Tensor, key_padding_mask: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Every layer's output of an ``nn.TransformerEncoder`` (the final norm applied to the last).

    The same computation as ``encoder(h, src_key_padding_mask=...)``, keeping the depths that
    ``forward_levels`` pools.
    """
    outs = []
    for layer in encoder.layers:
        h = layer(h, src_key_padding_mask=key_padding_mask)
        outs.append(h)
    if encoder.norm is not None:
        outs[-1] = encoder.norm(outs[-1])
    return outs
