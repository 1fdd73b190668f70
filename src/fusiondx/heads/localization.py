"""Lesion localisation: one bounding box per image, regressed on the image encoder's feature maps."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.heads._base import Head, HeadContext, no_loss
from fusiondx.heads._spatial import FiLM, check_spatial_options, image_maps, norm, upsample
from fusiondx.registry import register_head

_EPS = 1e-7
_SMOOTH_L1_BETA = 0.05
"""Quadratic below 5% of the image size, linear above: exact boxes are pulled in gently, far-off
ones with a constant gradient (in normalised units an error is < 1, so PyTorch's default beta of 1
would make the term purely quadratic and weak exactly where the boxes are close)."""
_INIT_DISTANCE = 0.1
"""Per-cell boxes start 0.2 of the image wide: small boxes around every cell, not the whole image."""


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU (Rezatofighi et al., 2019) of aligned xyxy boxes (N, 4), (N, 4) -> (N,), differentiable.

    IoU minus the part of the smallest enclosing box that the union leaves empty: 1 for identical
    boxes, in (-1, 0] for disjoint ones (more negative the farther apart), so it still has a
    gradient where the IoU is 0.
    """
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lo, hi = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (hi - lo).clamp(min=0).prod(dim=1)
    union = area_a + area_b - inter
    iou = inter / (union + _EPS)
    lo, hi = torch.minimum(a[:, :2], b[:, :2]), torch.maximum(a[:, 2:], b[:, 2:])
    hull = (hi - lo).clamp(min=0).prod(dim=1)
    return iou - (hull - union) / (hull + _EPS)


@register_head("localization")
class LocalizationHead(Head):
    """One lesion box per image, regressed on the image's feature maps and conditioned on the fused vector.

    The two deepest maps of the image encoder are merged (the deeper one upsampled and added to
    the other, after 1x1 convolutions to ``hidden`` channels, as in a feature pyramid) and refined
    by two 3x3 conv-GroupNorm-ReLU layers, the first modulated by FiLM (Perez et al., 2018): a
    per-channel scale and shift predicted from the fused representation, so that the clinical
    context can steer which finding is boxed. A 1x1 convolution then predicts, at every cell, a
    centre-ness logit and the distances (sigmoid, in image units) from the cell centre to the
    four sides of the box, as in FCOS (Tian et al., 2019). The answer is the softmax(centre-ness)
    weighted average of the per-cell boxes: differentiable end to end, one box per image, no
    non-maximum suppression. Boxes are normalised xyxy ``(x0/W, y0/H, x1/W, y1/H)``, x to the
    right, y down. The loss is ``l1_weight * SmoothL1 + giou_weight * (1 - GIoU)`` over the cases
    with a box (DETR's weighting, Carion et al., 2020); rows of NaN (no lesion, no image) are
    left out.

    Args:
        in_dim: width of the fused representation.
        image: name of the image modality whose maps are read.
        map_channels: the image encoder's ``map_channels()``.
        spatial_dims: 2 (volumes are not supported: use the segmentation head).
        hidden: channels of the convolutional head.
        giou_weight: weight of the GIoU loss.
        l1_weight: weight of the SmoothL1 loss (summed over the 4 coordinates, mean over boxes).
        condition: ``film`` to modulate the maps by the fused vector, ``none`` to ignore it (an
            ablation: what the other modalities add to the localisation).
    """

    primary_metric = "iou"
    skips_missing_targets = True
    needs = frozenset({"maps"})

    def __init__(
        self,
        *,
        in_dim: int,
        image: str,
        map_channels: list[int],
        spatial_dims: int = 2,
        hidden: int = 64,
        giou_weight: float = 2.0,
        l1_weight: float = 5.0,
        condition: str = "film",
    ) -> None:
        super().__init__()
        channels = check_spatial_options(
            "localization",
            image=image,
            map_channels=map_channels,
            spatial_dims=spatial_dims,
            condition=condition,
            allowed_dims=(2,),
        )
        self.image = image
        self.condition = condition
        self.giou_weight = giou_weight
        self.l1_weight = l1_weight
        self._channels = channels
        used = channels[
            -2:
        ]  # the deepest two: coarse enough to see the lesion, fine enough to place it
        self.lateral = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in used)
        self.conv1 = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
        self.norm1 = norm(hidden)
        self.film = FiLM(in_dim, hidden) if condition == "film" else None
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
        self.norm2 = norm(hidden)
        self.out = nn.Conv2d(hidden, 5, 1)  # centre-ness logit + left, top, right, bottom
        bias = self.out.bias
        assert bias is not None  # nn.Conv2d has a bias unless built with bias=False
        with torch.no_grad():
            bias[1:].fill_(torch.logit(torch.tensor(_INIT_DISTANCE)).item())

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> torch.Tensor:  # (B, 4) normalised xyxy
        maps = image_maps(ctx, self.image, self._channels, "localization")[-2:]
        h = self.lateral[-1](maps[-1])
        if len(maps) == 2:
            h = upsample(h, maps[0].shape[2:]) + self.lateral[0](maps[0])
        h = self.norm1(self.conv1(h))
        if self.film is not None:
            h = self.film(h, fused)
        h = F.relu(self.norm2(self.conv2(F.relu(h))))
        out = self.out(h).flatten(2)  # (B, 5, H*W)
        rows, cols = h.shape[2:]
        cy = (torch.arange(rows, device=h.device, dtype=h.dtype) + 0.5) / rows
        cx = (torch.arange(cols, device=h.device, dtype=h.dtype) + 0.5) / cols
        cy, cx = (c.flatten() for c in torch.meshgrid(cy, cx, indexing="ij"))
        dist = out[:, 1:].sigmoid()  # (B, 4, H*W): a cell's box side is at most an image away
        cells = torch.stack(
            [cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], dim=1
        )
        weight = out[:, 0].softmax(dim=1).unsqueeze(1)  # (B, 1, H*W)
        box = (cells * weight).sum(dim=2)
        # Inside the image on the way forward, yet a box hanging over the edge still gets the
        # gradient of its loss (a plain clamp would stop learning for that side).
        return box + (box.clamp(0, 1) - box).detach()

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # In float32 whatever the autocast dtype: box sides are differences of nearby numbers.
        pred, target = outputs.float(), target.to(outputs.device, torch.float32)
        has_box = ~torch.isnan(target).any(dim=1)
        if not has_box.any():
            return no_loss(outputs)
        pred, true = pred[has_box], target[has_box]
        l1 = F.smooth_l1_loss(pred, true, beta=_SMOOTH_L1_BETA, reduction="none").sum(dim=1).mean()
        giou = generalized_iou(pred, true)
        return self.l1_weight * l1 + self.giou_weight * (1 - giou).mean()

    def evaluate(self, predictions: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from fusiondx.evaluation.regions import box_metrics

        pred = predictions.detach().float().cpu().numpy()
        true = torch.as_tensor(target).detach().float().cpu().numpy()
        m = box_metrics(pred, true)
        return {k: float(m[k]) for k in ("iou", "detection_rate", "center_error")}
