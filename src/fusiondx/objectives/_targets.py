"""Low-level, parameter-free summaries of each modality's input: what reconstruction predicts.

Small on purpose (a thumbnail, a coarse trace, a bag of words, the table row), so that the
decoder must recover the content of the input from the embedding, not memorise its pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

IMAGE_GRID = {2: 8, 3: 4}
SIGNAL_STEPS = 32


def target_width(spec: Mapping[str, Any], text_bins: int) -> int:
    """Width of :func:`lowlevel_target` for a modality with this fitted spec."""
    kind = spec["kind"]
    if kind == "image":
        sd = int(spec.get("spatial_dims", 2))
        return int(spec["in_channels"]) * IMAGE_GRID[sd] ** sd
    if kind == "signal":
        return int(spec["in_channels"]) * SIGNAL_STEPS
    if kind == "text":
        return text_bins
    if kind == "tabular":
        return 2 * int(spec.get("n_numeric", 0)) + sum(
            int(c) for c in spec.get("cardinalities", ())
        )
    raise ValueError(f"no low-level target for modality kind '{kind}'")


def lowlevel_target(spec: Mapping[str, Any], x: Any, text_bins: int) -> torch.Tensor:
    """(B, width) summary of a batch of one modality's inputs (see :func:`target_width`).

    image: mean intensities on an 8x8 (3D: 4x4x4) grid per channel; signal: each lead averaged
    over 32 windows; text: log(1 + count) of the token ids hashed into ``text_bins`` bins
    (padding left out); tabular: numeric values and their missing flags, and each categorical
    column one-hot.
    """
    kind = spec["kind"]
    if kind == "image":
        sd = int(spec.get("spatial_dims", 2))
        pool = F.adaptive_avg_pool2d if sd == 2 else F.adaptive_avg_pool3d
        return pool(x.float(), IMAGE_GRID[sd]).flatten(1)
    if kind == "signal":
        return F.adaptive_avg_pool1d(x.float(), SIGNAL_STEPS).flatten(1)
    if kind == "text":
        counts = torch.zeros(x.shape[0], text_bins, device=x.device)
        counts.scatter_add_(1, x % text_bins, (x != 0).float())
        return torch.log1p(counts)
    if kind == "tabular":
        parts = []
        if "numeric" in x:
            miss = x["numeric_missing"].float()
            parts += [x["numeric"].float() * (1 - miss), miss]
        cards = [int(c) for c in spec.get("cardinalities", ())]
        if cards:
            cat = x["categorical"].long()
            parts += [F.one_hot(cat[:, k].clamp(0, c - 1), c).float() for k, c in enumerate(cards)]
        return torch.cat(parts, dim=1)
    raise ValueError(f"no low-level target for modality kind '{kind}'")
