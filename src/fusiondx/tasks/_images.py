"""What boxes and masks share: they are drawn on an image modality, and a case may have no lesion.

Boxes and masks are given in the pixel grid of the original image file, which is read to know
its size; they follow the image through resizing exactly, because resizing keeps the whole
field of view (no crop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from fusiondx.errors import ConfigError
from fusiondx.tasks._base import LabelSource, TaskInfo, TaskType

IMAGE_SIZE = 16  # of the examples' images
EXAMPLE_IMAGE = {
    "name": "cxr",
    "kind": "image",
    "column": "image",
    "preprocessing": {"size": [IMAGE_SIZE] * 2},
}

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig


class OnImage(TaskType):
    """Base of the types whose targets lie on an image modality (``TaskInfo.image``)."""

    may_be_empty = True
    drawn: ClassVar[str] = "targets"
    """What the targets are called in messages (boxes, masks)."""

    def infer(self, task: TaskConfig, df: pd.DataFrame, cfg: Config | None) -> TaskInfo:
        info = super().infer(task, df, cfg)
        return TaskInfo(info.name, info.type, (), info.label, image=self.image_modality(task, cfg))

    def image_modality(self, task: TaskConfig, cfg: Config | None) -> str | None:
        """``tasks[].image`` or the only image modality; refused if augmented geometrically."""
        if cfg is None:
            raise ConfigError(f"Task '{task.name}' needs the config to find its image modality.")
        images = [m.name for m in cfg.modalities if m.kind == "image"]
        if task.image is not None:
            if task.image not in images:
                raise ConfigError(
                    f"tasks[{task.name}].image is '{task.image}', which is not an image modality.",
                    fix=f"name one of the image modalities: {', '.join(images) or '(none configured)'}",
                )
            name = task.image
        elif len(images) == 1:
            name = images[0]
        else:
            raise ConfigError(
                f"Task '{task.name}' ({task.head}) needs an image modality, and the config has "
                f"{len(images) or 'no'} image modalities{': ' + ', '.join(images) if images else ''}.",
                fix=f"set tasks[{task.name}].image to the modality the {self.drawn} belong to"
                if images
                else "add the image modality the boxes or masks belong to",
            )
        a = cfg.modality(name).preprocessing.augment  # type: ignore[union-attr]
        if a.flip or a.rotate or a.scale:
            raise ConfigError(
                f"Modality '{name}' is augmented with flips/rotations/scaling, which would move lesions "
                f"away from the boxes or masks of task '{task.name}'.",
                fix=f"turn off modalities[{name}].preprocessing.augment for localization/segmentation "
                "(augmenting images and their targets together is not supported yet)",
            )
        return name

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        """Whether the case has a lesion: a filled label cell."""
        return (
            src.df[info.label[0]]
            .notna()
            .map({True: "lesion", False: "none"})
            .to_numpy()
            .astype(str)
        )

    def stratum_names(self, info: TaskInfo) -> dict[str, str] | None:
        return {"lesion": "with a lesion", "none": "without a lesion"}
