"""A linear model on downsampled pixels."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference


@register_reference(
    "pixels", reference="LeCun et al., Proc. IEEE 1998 (linear classifier baseline on pixels)"
)
class PixelsReference(Reference):
    """L2-regularised logistic regression on downsampled pixels.

    The image average-pooled to 16-31 pixels a side (after the same decoding, windowing and
    resizing as the trainings), standardised per pixel.

    What a network must beat to show it learned more than where the image is bright. No
    pretrained image encoder is available offline, so there is no frozen-feature variant.
    """

    inputs = "image"
    family = "linear"
    features_label = "downsampled pixels"

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, str(group), self.family)
