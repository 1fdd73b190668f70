"""Random, seedable image augmentation for training, built from MONAI array transforms."""

from __future__ import annotations

import math

import torch
from monai.transforms import Compose, RandFlip, RandomizableTransform, RandRotate, RandZoom

from fusiondx.errors import ConfigError

__all__ = ["RandImageAugment"]


class RandImageAugment:
    """Random horizontal flip, in-plane rotation and isotropic zoom of one image tensor.

    The input is a preprocessed float tensor ``(C, H, W)`` or ``(C, D, H, W)``; the output has
    the same shape and dtype. For 3D volumes the flip is along ``W`` and the rotation is in the
    ``H``-``W`` plane (about the ``D`` axis), matching what the 2D case does to each slice.
    Areas brought in from outside the image by rotation or zoom-out copy the nearest border
    pixel rather than zeros, so they do not look like a dark frame.

    Randomness comes from the MONAI transforms' own ``numpy.random.RandomState`` objects, seeded
    together by :meth:`set_random_state`. Each DataLoader worker gets a copy of the same state,
    so call ``set_random_state(base_seed + worker_id)`` in ``worker_init_fn`` to keep workers
    from producing identical augmentations.

    Args:
        flip: flip along the width axis with probability 0.5.
        rotate: maximum rotation in degrees; the angle is uniform in ``[-rotate, rotate]``.
        scale: maximum zoom change; the factor is uniform in ``[1 - scale, 1 + scale]`` and the
            same for every axis.
        spatial_dims: 2 or 3.
        seed: optional seed, the same as calling :meth:`set_random_state` afterwards.
    """

    def __init__(
        self,
        flip: bool = False,
        rotate: float = 0.0,
        scale: float = 0.0,
        spatial_dims: int = 2,
        seed: int | None = None,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3, got {spatial_dims}", fix="use 2 or 3")
        if not (rotate >= 0 and math.isfinite(rotate)):
            raise ConfigError(
                f"augmentation rotate must be a non-negative number of degrees, got {rotate}",
                fix="set rotate, e.g. 10",
            )
        if not 0 <= scale < 1:
            raise ConfigError(
                f"augmentation scale must be in [0, 1), got {scale}", fix="set scale, e.g. 0.1"
            )
        self.flip = bool(flip)
        self.rotate = float(rotate)
        self.scale = float(scale)
        self.spatial_dims = spatial_dims

        transforms: list[RandomizableTransform] = []
        if self.flip:
            # Spatial axes exclude the channel axis: the last one is W in 2D and 3D.
            transforms.append(RandFlip(prob=0.5, spatial_axis=spatial_dims - 1))
        if self.rotate > 0:
            # range_x is the in-plane angle in 2D and the rotation in the H-W plane in 3D.
            transforms.append(
                RandRotate(
                    range_x=math.radians(self.rotate),
                    prob=1.0,
                    keep_size=True,
                    mode="bilinear",
                    padding_mode="border",
                    align_corners=False,
                )
            )
        if self.scale > 0:
            # Scalar min/max zoom: MONAI draws one factor for all axes (isotropic).
            transforms.append(
                RandZoom(
                    prob=1.0,
                    min_zoom=1.0 - self.scale,
                    max_zoom=1.0 + self.scale,
                    mode="bilinear" if spatial_dims == 2 else "trilinear",
                    padding_mode="edge",
                    align_corners=False,
                    keep_size=True,
                )
            )
        self._compose = Compose(transforms) if transforms else None
        if seed is not None:
            self.set_random_state(seed)

    @property
    def is_identity(self) -> bool:
        """True when every augmentation is off, so calling returns the input unchanged."""
        return self._compose is None

    def set_random_state(self, seed: int) -> RandImageAugment:
        """Seed every random transform (deterministically derived from ``seed``); returns self."""
        if self._compose is not None:
            # Compose draws one sub-seed per transform from a RandomState(seed).
            self._compose.set_random_state(seed=int(seed) % (2**32))
        return self

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Augment one image.

        Args:
            image: float tensor ``(C, *spatial)`` with ``spatial_dims`` spatial axes.

        Returns:
            A plain tensor of the same shape and dtype (the input itself when all augmentations
            are off).
        """
        if image.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"RandImageAugment(spatial_dims={self.spatial_dims}) expects a tensor with "
                f"{self.spatial_dims + 1} dimensions (C, *spatial), got shape {tuple(image.shape)}"
            )
        if self._compose is None:
            return image
        out = self._compose(image)
        # MONAI returns a MetaTensor that carries its transform history; batches want plain
        # tensors, and the dtype must not change under the model.
        out = torch.as_tensor(out).as_subclass(torch.Tensor)
        return out.to(dtype=image.dtype).contiguous()

    def __repr__(self) -> str:
        return (
            f"RandImageAugment(flip={self.flip}, rotate={self.rotate}, scale={self.scale}, "
            f"spatial_dims={self.spatial_dims})"
        )
