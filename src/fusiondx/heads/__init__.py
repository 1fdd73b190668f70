"""Task heads; importing this package registers them."""

from fusiondx.heads import (  # noqa: F401
    classification,
    generation,
    localization,
    regression,
    segmentation,
    survival,
)
