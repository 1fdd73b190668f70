"""Tabular data: Integrated Gradients on the standardised numbers (baseline: the training mean,
which standardises to 0), and for categorical columns the change when the category is set to
missing (captum's feature ablation); drawn as a signed bar chart per feature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusiondx.explanations._target import Target, modality_function
from fusiondx.models.multimodal import MultimodalModel


def tabular_attribution(
    model: MultimodalModel,
    target: Target,
    inputs: Mapping[str, Any],
    mask: torch.Tensor,
    modality: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(B, numeric) and (B, categorical) attributions of a tabular modality."""
    from captum.attr import FeatureAblation, IntegratedGradients

    x = inputs[modality]
    b = mask.shape[0]
    num, cat = np.zeros((b, 0)), np.zeros((b, 0))
    numeric = x.get("numeric")
    if numeric is not None and numeric.shape[1]:
        f = modality_function(model, target, inputs, mask, modality, "numeric")
        v = numeric.float()
        num = IntegratedGradients(f).attribute(v, torch.zeros_like(v), n_steps=32).detach().numpy()
    categorical = x.get("categorical")
    if categorical is not None and categorical.shape[1]:
        f = modality_function(model, target, inputs, mask, modality, "categorical")
        with torch.no_grad():
            # Ablation to id 0 (missing) gives "value minus missing"; the sign matches IG's.
            cat = FeatureAblation(f).attribute(categorical, baselines=0).numpy()
    return num, cat


def tabular_figure(
    names: Sequence[str], values: np.ndarray, shown: Sequence[str], out: Path
) -> Path:
    """Horizontal signed bars, largest magnitude on top; labels carry the case's values."""
    import matplotlib.pyplot as plt

    order = np.argsort(-np.abs(values))[::-1]
    labels = [f"{names[i]} = {shown[i]}" for i in order]
    vals = values[order]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(vals) + 1.2))
    ax.barh(labels, vals, color=np.where(vals >= 0, "#d55e00", "#0072b2"))
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel("attribution (change in the class probability)", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
