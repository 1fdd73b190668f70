"""Late (decision-level) fusion: each modality predicts on its own, a fusion combines the predictions."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, cast

import torch
from torch import nn

from fusiondx.heads import Head
from fusiondx.models.multimodal import MultimodalModel


class MetaLearner(Protocol):
    """A late fusion fitted on validation data (one with ``fit_meta``, e.g. ``late_stacking``)."""

    out_dim: int

    def fit_meta(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor, target: torch.Tensor
    ) -> None: ...

    def __call__(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor: ...


class LateFusion(MultimodalModel):
    """Every modality has its own head per task; one fusion per task combines their probabilities.

    The combined probabilities are mapped back to logits by the task's head, so that losses and
    metrics are the same as for the other levels. Late fusions that learn on validation data
    (``late_stacking``) are fitted through :meth:`meta_learners` and :meth:`modality_probs`.

    Args:
        encoders: one encoder per modality.
        fusion: task -> Fusion that combines the modalities' (B, K) probabilities.
        heads: task -> (modality -> Head): each modality's own head for the task.
    """

    fusion: nn.ModuleDict  # task -> Fusion

    def __init__(
        self, encoders: nn.ModuleDict, fusion: nn.ModuleDict, heads: nn.ModuleDict
    ) -> None:
        super().__init__(encoders, fusion, heads, "late")

    def run(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        targets: Mapping[str, Any] | None = None,
        *,
        outputs: bool = True,
        tasks: Collection[str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        out = {}
        for task, probs in self._modality_probs(self.embed(inputs)).items():
            if tasks is not None and task not in tasks:
                continue
            fused = self.fusion[task](probs, mask)  # (B, K) probabilities
            out[task] = self.task_head(task).from_probs(fused)
        return out, out

    def modality_probs(self, inputs: Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
        """Task -> modality -> that modality's own probabilities (B, K)."""
        return self._modality_probs(self.embed(inputs))

    def _modality_probs(
        self, feats: Mapping[str, torch.Tensor]
    ) -> dict[str, dict[str, torch.Tensor]]:
        probs: dict[str, dict[str, torch.Tensor]] = {}
        for task in self.heads:
            heads = self._heads_of(task)
            probs[task] = {m: heads[m].to_probs(heads[m](feats[m])) for m in self.modalities}
        return probs

    def _heads_of(self, task: str) -> dict[str, Head]:
        """Modality -> its head for ``task``."""
        # nn.ModuleDict types its items as plain Modules.
        heads = cast(nn.ModuleDict, self.heads[task])
        return {m: cast(Head, h) for m, h in heads.items()}

    def meta_learners(self) -> dict[str, MetaLearner]:
        """Task -> the fusion, for fusions fitted on validation data (those with ``fit_meta``)."""
        # hasattr cannot narrow a Module to the protocol.
        return {t: cast(MetaLearner, f) for t, f in self.fusion.items() if hasattr(f, "fit_meta")}

    def task_head(self, task: str) -> Head:
        # Every modality's head of a task has the same loss and metrics: the first one speaks for all.
        return next(iter(self._heads_of(task).values()))
