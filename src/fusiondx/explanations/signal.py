"""Signals: Integrated Gradients (Sundararajan et al., 2017) over every lead and sample, drawn
on the trace (red pushes the explained class up, blue down)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusiondx.explanations._target import Target, modality_function
from fusiondx.models.multimodal import MultimodalModel


def signal_attribution(
    model: MultimodalModel,
    target: Target,
    inputs: Mapping[str, Any],
    mask: torch.Tensor,
    modality: str,
    n_steps: int = 32,
) -> np.ndarray:
    """(B, leads, samples) attributions against a flat (zero) signal; they sum to the change in
    the class probability from the flat signal to this one."""
    from captum.attr import IntegratedGradients

    x = inputs[modality].float()
    ig = IntegratedGradients(modality_function(model, target, inputs, mask, modality))
    return ig.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps).detach().numpy()


def signal_figure(
    signal: np.ndarray, attr: np.ndarray, leads: Sequence[str], out: Path, rate: float | None
) -> Path:
    """One panel per lead: the trace coloured by its attribution (symmetric scale)."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    n, length = signal.shape
    t = np.arange(length) / rate if rate else np.arange(length)
    top = float(np.abs(attr).max()) or 1.0
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.3 * n + 0.6), sharex=True, squeeze=False)
    line = None
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(
            t, signal[i], color="#9aa5b1", lw=0.8
        )  # the trace stays visible where attribution is ~0
        pts = np.stack([t, signal[i]], axis=1)
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        seg_attr = (attr[i, :-1] + attr[i, 1:]) / 2
        line = LineCollection(
            list(segs), cmap="RdBu_r", norm=plt.Normalize(-top, top), linewidths=1.6
        )
        line.set_array(seg_attr)
        ax.add_collection(line)
        ax.set_xlim(t[0], t[-1])
        pad = 0.1 * (float(np.ptp(signal[i])) or 1.0)
        ax.set_ylim(float(signal[i].min()) - pad, float(signal[i].max()) + pad)
        ax.set_ylabel(leads[i] if i < len(leads) else f"lead {i + 1}", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("seconds" if rate else "sample", fontsize=9)
    if line is not None:
        fig.colorbar(line, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.01, label="attribution")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
