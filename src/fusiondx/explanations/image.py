"""Images: Grad-CAM (Selvaraju et al., 2017) on the encoder's last feature map, upsampled to the
image and drawn over it. Encoders without a spatial feature map (a ViT, an early-fusion
projection) get Integrated Gradients on the pixels instead (captum does both)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fusiondx.explanations._target import Target, modality_function
from fusiondx.models.multimodal import MultimodalModel


def cam_layer(
    model: MultimodalModel, modality: str, inputs: Mapping[str, Any], mask: torch.Tensor
) -> nn.Module | None:
    """The module of the modality's encoder that outputs its last spatial feature map.

    Found by watching one prediction: of every module that output a (B, C, *S) map with more
    than one position, the last to finish (a block that ends the network, e.g. a CNN's
    ``features``, finishes after the layers inside it). Watching the real forward pass finds
    the map whatever path the fusion takes through the encoder (embedding, tokens or levels).
    """
    image = inputs[modality]
    dims = image.dim()
    seen: list[nn.Module] = []

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        if (
            isinstance(out, torch.Tensor)
            and out.dim() == dims
            and out.shape[0] == image.shape[0]
            and int(np.prod(out.shape[2:])) > 1
        ):
            seen.append(module)

    encoder = model.encoders[modality]
    handles = [m.register_forward_hook(hook) for m in encoder.modules() if m is not encoder]
    try:
        with torch.no_grad():
            model.predict(inputs, mask)  # runs the hooks
    finally:
        for h in handles:
            h.remove()
    return seen[-1] if seen else None


def image_attribution(
    model: MultimodalModel,
    target: Target,
    inputs: Mapping[str, Any],
    mask: torch.Tensor,
    modality: str,
) -> tuple[np.ndarray, str]:
    """(B, *S) attribution of every pixel (Grad-CAM: >= 0) and the method's name."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam

    image = inputs[modality].float()
    f = modality_function(model, target, inputs, mask, modality)
    layer = cam_layer(model, modality, inputs, mask)
    if layer is None:
        ig = IntegratedGradients(f)
        attr = ig.attribute(image, baselines=torch.zeros_like(image), n_steps=32)
        return attr.sum(1).detach().numpy(), "Integrated Gradients"
    cam = LayerGradCam(f, layer).attribute(image, relu_attributions=True)  # (B, 1, *s)
    mode = "trilinear" if image.dim() == 5 else "bilinear"
    up = LayerAttribution.interpolate(cam, tuple(image.shape[2:]), interpolate_mode=mode)
    return up[:, 0].detach().numpy(), "Grad-CAM"


def argmax_point(heat: np.ndarray) -> tuple[int, ...]:
    """The (row, col) (3D: (slice, row, col)) of the attribution's maximum."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(heat)), heat.shape))


def image_figure(image: np.ndarray, heat: np.ndarray, method: str, out: Path) -> Path:
    """The image (first channel; 3D: the slice with the most attribution) beside the overlay."""
    import matplotlib.pyplot as plt

    if heat.ndim == 3:
        k = int(np.argmax(heat.reshape(heat.shape[0], -1).sum(1)))
        image, heat = image[:, k], heat[k]
    gray = image[0] if image.shape[0] == 1 else image.mean(0)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    axes[0].imshow(gray, cmap="gray")
    axes[0].set_title("image (as the model saw it)", fontsize=9)
    axes[1].imshow(gray, cmap="gray")
    signed = method != "Grad-CAM"
    top = float(np.abs(heat).max()) or 1.0
    shown = axes[1].imshow(
        heat / top,
        cmap="RdBu_r" if signed else "inferno",
        vmin=-1 if signed else 0,
        vmax=1,
        alpha=0.55,
    )
    r, c = argmax_point(heat)
    axes[1].plot([c], [r], marker="+", color="cyan", markersize=12, mew=2)
    axes[1].set_title(f"{method} (+: maximum)", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
