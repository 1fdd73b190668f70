"""The model: modality encoders + a fusion strategy + task heads, as one plain nn.Module.

No loss, optimiser or logging lives here, so export and serving need only this module.
:class:`MultimodalModel` is what the engine sees; :class:`FeatureFusion` fuses representations
(early and intermediate strategies) and :class:`~fusiondx.models.late.LateFusion` combines each
modality's own predictions (late strategies).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from fusiondx.fusion import Fusion
from fusiondx.heads import Head, HeadContext

if TYPE_CHECKING:
    from fusiondx.encoders import Encoder


class MultimodalModel(nn.Module):
    """What every FusionDx model answers: task outputs of a batch, and each task's head.

    Subclasses decide how the modality encoders' outputs become task outputs.

    Args:
        encoders: one encoder per modality (for early fusion, the low-level projections).
        level: early | intermediate | late (the fusion strategy's level).
    """

    def __init__(
        self, encoders: nn.ModuleDict, fusion: nn.Module, heads: nn.ModuleDict, level: str
    ) -> None:
        super().__init__()
        # Registered in this order (encoders, fusion, heads): the names and order of model.pt.
        self.encoders = encoders
        self.fusion = fusion
        self.heads = heads
        self.level = level
        self.modalities = sorted(encoders.keys())

    def _encoder(self, modality: str) -> Encoder:
        # nn.ModuleDict types its items as plain Modules.
        return cast("Encoder", self.encoders[modality])

    def embed(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Each modality's embedding (B, D), in sorted modality order."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def forward(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        targets: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Task outputs for a batch (what the losses take); ``mask`` (B, M) is True where a
        modality is present. ``targets`` feed heads that need them (teacher forcing)."""
        return self.run(inputs, mask, targets)[0]

    def predict(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        *,
        tasks: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """What the model answers per task: logits, boxes, mask logits, risks, generated tokens.

        ``tasks`` limits the answer to those tasks (the ONNX graph leaves out the heads that
        decode text, which the service runs in PyTorch).
        """
        return self.run(inputs, mask, None, outputs=False, tasks=tasks)[1]

    def run(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        targets: Mapping[str, Any] | None = None,
        *,
        outputs: bool = True,
        tasks: Collection[str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Training outputs and predictions (task -> value) from one pass of the encoders.

        Predictions are the outputs themselves except for heads that decode (report generation),
        whose predictions are computed separately; ``outputs=False`` skips their outputs.
        ``tasks`` (default all) runs only those tasks' heads.
        """
        raise NotImplementedError

    def task_head(self, task: str) -> Head:
        """The head that defines the task's loss and metrics."""
        raise NotImplementedError

    def features(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> torch.Tensor:
        """Each case's representation (B, D), e.g. to compare cases (active learning's diversity).

        Here, for models without one fused vector (late fusion): every modality's embedding,
        zeroed where the modality is absent, concatenated in sorted modality order.
        """
        feats = self.embed(inputs)
        return torch.cat(
            [feats[m] * mask[:, i, None].to(feats[m].dtype) for i, m in enumerate(self.modalities)],
            dim=1,
        )

    def aux_loss(self) -> torch.Tensor | None:
        """The fusions' auxiliary losses of the last training forward, summed (None if none).

        Only fusions tagged ``aux_loss`` have one (see :class:`~fusiondx.fusion.Fusion`).
        """
        fusions = self.fusion.values() if isinstance(self.fusion, nn.ModuleDict) else [self.fusion]
        terms = [a for f in fusions if (a := cast(Fusion, f).aux_loss()) is not None]
        return torch.stack(terms).sum() if terms else None


class FeatureFusion(MultimodalModel):
    """Early and intermediate fusion: ``heads[task](fusion(encoders(inputs), mask), context)``.

    The context gives heads that need more than the fused vector an image encoder's feature
    maps (localisation, segmentation) or every modality's tokens (report generation).

    Args:
        encoders: one encoder per modality (for early fusion, the low-level projections).
        fusion: the fusion strategy, modality embeddings (or tokens, or levels) -> (B, D).
        heads: task -> Head, each reading the fused vector.
        level: early | intermediate.
    """

    fusion: Fusion

    def __init__(
        self, encoders: nn.ModuleDict, fusion: Fusion, heads: nn.ModuleDict, level: str
    ) -> None:
        super().__init__(encoders, fusion, heads, level)

    def run(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        targets: Mapping[str, Any] | None = None,
        *,
        outputs: bool = True,
        tasks: Collection[str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        fused, ctx = self.encode(inputs, mask)
        outs, preds = {}, {}
        for t, head in self._heads():
            if tasks is not None and t not in tasks:
                continue
            target = None if targets is None else targets.get(t)
            if outputs or not head.decodes:
                outs[t] = head(fused, ctx, target)
            preds[t] = head.predict(fused, ctx) if head.decodes else outs[t]
        return outs, preds

    def encode(
        self, inputs: Mapping[str, Any], mask: torch.Tensor
    ) -> tuple[torch.Tensor, HeadContext]:
        """The fused vector (B, D) and the context heads may read (feature maps, tokens)."""
        encoder = self._encoder

        def maps(m: str) -> list[torch.Tensor]:
            return encoder(m).forward_maps(inputs[m])[0]

        def tokens(m: str) -> tuple[torch.Tensor, torch.Tensor | None]:
            return encoder(m).forward_tokens(inputs[m]), encoder(m).token_mask(inputs[m])

        ctx = HeadContext(mask, self.modalities, maps, tokens)
        if self.fusion.uses_tokens:
            # Through the context, so a report decoder reuses these tokens instead of recomputing them.
            toks = {m: ctx.tokens(m) for m in self.modalities}
            return self.fusion(
                {m: t for m, (t, _) in toks.items()},
                mask,
                token_masks={m: r for m, (_, r) in toks.items()},
            ), ctx
        if self.fusion.uses_levels:
            levels = {m: encoder(m).forward_levels(inputs[m]) for m in self.modalities}
            return self.fusion(levels, mask), ctx
        feats = {}
        wanted = self.map_modalities()
        for m in self.modalities:
            if m in wanted:
                # One pass of the image encoder gives both its feature maps and its embedding.
                m_maps, feats[m] = encoder(m).forward_maps(inputs[m])
                ctx.provide_maps(m, m_maps)
            else:
                feats[m] = encoder(m)(inputs[m])
        return self.fusion(feats, mask), ctx

    def features(self, inputs: Mapping[str, Any], mask: torch.Tensor) -> torch.Tensor:
        """The fused vector (B, D) the heads read."""
        return self.encode(inputs, mask)[0]

    def map_modalities(self) -> set[str]:
        """The image modalities whose feature maps some head reads."""
        wanted: set[str] = set()
        for _, h in self._heads():
            image = getattr(h, "image", None)  # set by the heads that read feature maps
            if "maps" in h.needs and image:
                wanted.add(image)
        return wanted

    def _heads(self) -> Iterator[tuple[str, Head]]:
        # nn.ModuleDict types its items as plain Modules.
        for t, h in self.heads.items():
            yield t, cast(Head, h)

    def task_head(self, task: str) -> Head:
        return cast(Head, self.heads[task])
