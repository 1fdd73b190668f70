"""Lesion segmentation: a mask logit per pixel (or voxel), decoded from the image encoder's maps."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.errors import ConfigError
from fusiondx.heads._base import Head, HeadContext, no_loss
from fusiondx.heads._spatial import CONV, FiLM, check_spatial_options, image_maps, norm, upsample
from fusiondx.registry import register_head

IGNORE = 255
"""Target value of every pixel of a case without a mask (no image): the case is left out."""


@register_head("segmentation")
class SegmentationHead(Head):
    """Binary lesion mask from a feature-pyramid decoder over the image's maps, conditioned on the fused vector.

    A U-Net-like decoder (Ronneberger et al., 2015) with the top-down path of a feature pyramid
    network (Lin et al., 2017): every encoder map goes through a 1x1 convolution to ``width``
    channels; from the deepest map up, the running map is upsampled and added to the next finer
    one, then smoothed by a 3x3 conv-GroupNorm, modulated by FiLM (Perez et al., 2018; a
    per-channel scale and shift predicted from the fused representation) and a ReLU. The finest
    map is mapped to one logit by a 1x1 convolution and upsampled to ``image_size``. 2D or 3D.

    The loss is Dice + focal (MONAI's ``DiceFocalLoss`` on the logits) over the cases with a mask.
    The Dice is the batch Dice (every case's pixels pooled into one overlap) with a smoothing
    of 1: a case or a batch without lesion neither makes it undefined nor dominates it, while
    false positives on lesion-free cases still cost (``1 - 1/(1 + predicted area)`` for an
    all-empty batch) and the focal term trains every pixel. Cases whose every pixel is 255 (no
    image) are left out.

    Args:
        in_dim: width of the fused representation.
        image: name of the image modality whose maps are read.
        map_channels: the image encoder's ``map_channels()``.
        image_size: spatial size of the preprocessed image, which is the size of the mask.
        spatial_dims: 2 for (H, W) masks, 3 for (D, H, W).
        width: channels of the decoder.
        condition: ``film`` to modulate the decoder by the fused vector, ``none`` to ignore it (an
            ablation: what the other modalities add to the segmentation).
        dice_weight: weight of the Dice loss.
        focal_weight: weight of the focal loss.
        threshold: probability at and above which a pixel is called lesion.
    """

    primary_metric = "dice_lesion"
    skips_missing_targets = True
    needs = frozenset({"maps"})

    def __init__(
        self,
        *,
        in_dim: int,
        image: str,
        map_channels: list[int],
        image_size: tuple[int, ...],
        spatial_dims: int = 2,
        width: int = 32,
        condition: str = "film",
        dice_weight: float = 1.0,
        focal_weight: float = 1.0,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        channels = check_spatial_options(
            "segmentation",
            image=image,
            map_channels=map_channels,
            spatial_dims=spatial_dims,
            condition=condition,
        )
        size = tuple(int(s) for s in image_size)
        if len(size) != spatial_dims or any(s <= 0 for s in size):
            raise ConfigError(
                f"head 'segmentation' needs image_size with {spatial_dims} positive sizes, got {list(size)}",
                fix="give the image modality a fixed image_size in the data config",
            )
        if not 0 < threshold < 1:
            raise ConfigError(
                f"segmentation threshold must be in (0, 1), got {threshold}",
                fix="use a probability such as 0.5",
            )
        from monai.losses import DiceFocalLoss

        conv = CONV[spatial_dims]
        self.image = image
        self.image_size = size
        self.threshold = threshold
        self._channels = channels
        self.lateral = nn.ModuleList(conv(c, width, 1) for c in channels)
        self.smooth = nn.ModuleList(conv(width, width, 3, padding=1, bias=False) for _ in channels)
        self.norms = nn.ModuleList(norm(width) for _ in channels)
        self.films = (
            nn.ModuleList(FiLM(in_dim, width) for _ in channels) if condition == "film" else None
        )
        self.out = conv(width, 1, 1)
        # batch=True: the batch Dice (see the class docstring); include_background=True because the
        # single sigmoid channel *is* the lesion channel.
        self.criterion = DiceFocalLoss(
            sigmoid=True,
            batch=True,
            smooth_nr=1.0,
            smooth_dr=1.0,
            lambda_dice=dice_weight,
            lambda_focal=focal_weight,
        )

    def forward(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, target: Any = None
    ) -> torch.Tensor:  # (B, 1, *image_size) logits
        maps = image_maps(ctx, self.image, self._channels, "segmentation")
        h: torch.Tensor | None = None
        for i in reversed(range(len(maps))):  # deep (coarse) to shallow (fine)
            lat = self.lateral[i](maps[i])
            h = lat if h is None else upsample(h, lat.shape[2:]) + lat
            h = self.norms[i](self.smooth[i](h))
            if self.films is not None:
                h = self.films[i](h, fused)
            h = F.relu(h)
        # The 1x1 convolution before the upsampling: both are linear and interpolation weights sum
        # to one, so this equals upsampling then convolving, on one channel instead of `width`.
        return upsample(self.out(h), self.image_size)

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = ~(target == IGNORE).flatten(1).all(dim=1)
        if not valid.any():
            return no_loss(outputs)
        # float32: the Dice sums run over every pixel of the batch.
        return self.criterion(outputs[valid].float(), (target[valid] == 1).float())

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Lesion probability per pixel, (B, 1, *image_size), e.g. to write masks."""
        return outputs.sigmoid()

    def evaluate(self, predictions: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from fusiondx.evaluation.regions import mask_metrics, mask_scores

        pred = (self.probabilities(predictions.detach().float()) >= self.threshold).cpu().numpy()
        true = torch.as_tensor(target).detach().cpu().numpy()
        m = mask_metrics(mask_scores(pred, true))
        return {k: float(m[k]) for k in ("dice", "iou", "dice_lesion", "iou_lesion")}
