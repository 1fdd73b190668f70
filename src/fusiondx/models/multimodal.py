"""The model: modality encoders + a fusion strategy + task heads, as one plain nn.Module.

No loss, optimiser or logging lives here, so export and serving need only this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.heads._base import Head, HeadContext


class MultimodalModel(nn.Module):
    """Composes encoders, fusion and heads for early, intermediate and late fusion.

    - early / intermediate: ``heads[task](fusion(encoders(inputs), mask), context)``, where the
      context gives heads that need more than the fused vector an image encoder's feature maps
      (localisation, segmentation) or every modality's tokens (report generation);
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

    def forward(self, inputs: Mapping[str, Any], mask: torch.Tensor,
                targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Task outputs for a batch (what the losses take); ``mask`` (B, M) is True where a
        modality is present. ``targets`` feed heads that need them (teacher forcing)."""
        return self.run(inputs, mask, targets)[0]

    def predict(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> dict[str, Any]:
        """What the model answers per task: logits, boxes, mask logits, risks, generated tokens."""
        return self.run(inputs, mask, None, outputs=False)[1]

    def run(self, inputs: Mapping[str, Any], mask: torch.Tensor, targets: Mapping[str, Any] | None = None,
            *, outputs: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """Training outputs and predictions from one pass of the encoders and the fusion.

        Predictions are the outputs themselves except for heads that decode (report generation),
        whose predictions are computed separately; ``outputs=False`` skips their outputs.
        """
        if self.level == "late":
            out = self._late(inputs, mask)
            return out, out
        fused, ctx = self.encode(inputs, mask)
        outs, preds = {}, {}
        for t, head in self.heads.items():
            target = None if targets is None else targets.get(t)
            if outputs or not head.decodes:
                outs[t] = head(fused, ctx, target)
            preds[t] = head.predict(fused, ctx) if head.decodes else outs[t]
        return outs, preds

    def encode(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> tuple[torch.Tensor, HeadContext]:
        """The fused vector (B, D) and the context heads may read (feature maps, tokens)."""
        encoders = self.encoders

        def maps(m: str) -> list[torch.Tensor]:
            return encoders[m].forward_maps(inputs[m])[0]

        def tokens(m: str) -> tuple[torch.Tensor, torch.Tensor | None]:
            return encoders[m].forward_tokens(inputs[m]), encoders[m].token_mask(inputs[m])

        ctx = HeadContext(mask, self.modalities, maps, tokens)
        if self.fusion.uses_tokens:
            # Through the context, so a report decoder reuses these tokens instead of recomputing them.
            toks = {m: ctx.tokens(m) for m in self.modalities}
            return self.fusion({m: t for m, (t, _) in toks.items()}, mask,
                               token_masks={m: r for m, (_, r) in toks.items()}), ctx
        if self.fusion.uses_levels:
            levels = {m: encoders[m].forward_levels(inputs[m]) for m in self.modalities}
            return self.fusion(levels, mask), ctx
        feats = {}
        for m in self.modalities:
            if m in self._map_modalities:
                # One pass of the image encoder gives both its feature maps and its embedding.
                ctx._maps[m], feats[m] = encoders[m].forward_maps(inputs[m])
            else:
                feats[m] = encoders[m](inputs[m])
        return self.fusion(feats, mask), ctx

    @property
    def _map_modalities(self) -> set[str]:
        return {getattr(h, "image", None) for h in self.heads.values()
                if isinstance(h, Head) and "maps" in h.needs} - {None}  # type: ignore[return-value]

    def _late(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for task, probs in self._modality_probs(self.embed(inputs)).items():
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
