"""The run's model with its post-hoc calibration applied, so an explanation explains the
probability `predict` writes (posthoc.json), gradients included."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch

from fusiondx.models.multimodal import MultimodalModel


def _scaled(z: torch.Tensor, params: Mapping[str, Any], kind: str) -> torch.Tensor:
    """Torch form of :func:`fusiondx.evaluation.calibration.apply_scaling` (kept differentiable
    for captum)."""
    if params["method"] == "vector":
        return z * z.new_tensor(params["scale"]) + z.new_tensor(params["bias"])
    temp = z.new_tensor(params["temperature"])
    return z / (temp[0] if kind == "binary" else temp)


class Calibrated:
    """Delegates everything to ``model``; :meth:`predict` returns each calibrated task's
    scaled logits (tasks without a fitted scaling unchanged)."""

    def __init__(self, model: MultimodalModel, posthoc: Mapping[str, Any] | None) -> None:
        self._model = model
        tasks = (posthoc or {}).get("tasks") or {}
        self._scaling = {
            t: (e["calibration"], e["type"]) for t, e in tasks.items() if e.get("calibration")
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(
        self,
        inputs: Mapping[str, Any],
        mask: torch.Tensor,
        *,
        tasks: Collection[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        out = dict(self._model.predict(inputs, mask, tasks=tasks))
        for t, (params, kind) in self._scaling.items():
            if t in out:
                out[t] = _scaled(out[t], params, kind).reshape(out[t].shape)
        return out


def calibrated(model: MultimodalModel, posthoc: Mapping[str, Any] | None) -> Any:
    """``model`` as `predict` scores it: calibrated when the run has a fitted scaling."""
    return Calibrated(model, posthoc) if posthoc else model
