"""The model: modality encoders + a fusion strategy + task heads, as one plain nn.Module.

No loss, optimiser or logging lives here, so export and serving need only this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.heads._base import Head


class MultimodalModel(nn.Module):
    """Composes encoders, fusion and heads for early, intermediate and late fusion.

    - early / intermediate: ``heads[task](fusion(encoders(inputs), mask))``;
    - late: every modality has its own head per task (``heads[task][modality]``); the fusion
      (one per task, in ``fusion[task]``) combines their probabilities, and the output is mapped
      back to logits so that losses and metrics are the same as for other levels.

    Args:
        encoders: one encoder per modality (for early fusion, the low-level projections).
        fusion: a Fusion, or for late fusion a ModuleDict task -> Fusion.
        heads: task -> Head, or for late fusion task -> ModuleDict modality -> Head.
        level: early | intermediate | late.
    """

    def __init__(self, encoders: nn.ModuleDict, fusion: nn.Module, heads: nn.ModuleDict,
                 level: str) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion = fusion
        self.heads = heads
        self.level = level
        self.modalities = sorted(encoders.keys())

    def embed(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Each modality's embedding (B, D), in sorted modality order."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def forward(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Task outputs (logits) for a batch; ``mask`` (B, M) is True where a modality is present."""
        if self.level != "late" and self.fusion.uses_tokens:
            tokens = {m: self.encoders[m].forward_tokens(inputs[m]) for m in self.modalities}
            token_masks = {m: self.encoders[m].token_mask(inputs[m]) for m in self.modalities}
            fused = self.fusion(tokens, mask, token_masks=token_masks)
            return {t: head(fused) for t, head in self.heads.items()}
        if self.level != "late" and self.fusion.uses_levels:
            levels = {m: self.encoders[m].forward_levels(inputs[m]) for m in self.modalities}
            fused = self.fusion(levels, mask)
            return {t: head(fused) for t, head in self.heads.items()}
        feats = self.embed(inputs)
        if self.level != "late":
            fused = self.fusion(feats, mask)  # (B, D)
            return {t: head(fused) for t, head in self.heads.items()}
        out = {}
        for task, probs in self._modality_probs(feats).items():
            fused = self.fusion[task](probs, mask)  # (B, K) probabilities
            out[task] = self.task_head(task).from_probs(fused)
        return out

    def modality_probs(self, inputs: Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
        """Late fusion only: task -> modality -> that modality's own probabilities (B, K)."""
        if self.level != "late":
            raise ValueError("per-modality predictions exist only for late fusion")
        return self._modality_probs(self.embed(inputs))

    def _modality_probs(self, feats: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        return {task: {m: heads[m].to_probs(heads[m](feats[m])) for m in self.modalities}
                for task, heads in self.heads.items()}

    def task_head(self, task: str) -> Head:
        """The head that defines the task's loss and metrics."""
        h = self.heads[task]
        return next(iter(h.values())) if isinstance(h, nn.ModuleDict) else h

    @property
    def fusion_module(self) -> Fusion:
        f = self.fusion
        return next(iter(f.values())) if isinstance(f, nn.ModuleDict) else f
