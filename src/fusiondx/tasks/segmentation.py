"""Segmentation: a lesion mask per case, on an image modality.

Label: the path of a mask file of the image's geometry (any format the image readers take, 2D
or 3D; any non-zero pixel is lesion). Targets: uint8 (N, 1, *size), 0/1 at the image modality's
preprocessed size (area averaging, then >= 0.5); a case without its image is 255 everywhere
(ignored); an empty cell with an image means "no lesion" (zeros). ``predictions.csv``:
``t_lesion`` (1 if the reference mask has lesion pixels, empty when the case has no image),
``t_pred_fraction`` (share of pixels predicted as lesion), ``t_dice``, ``t_iou``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import Example, LabelSource, Scorer, TaskInfo, no_training, weighted
from fusiondx.tasks._images import EXAMPLE_IMAGE, IMAGE_SIZE, OnImage


@register_task_type("mask")
class Mask(OnImage):
    """A lesion mask per case; metrics Dice and IoU, over all cases and over cases with a lesion."""

    heads = ("segmentation",)
    drawn = "masks"
    metrics = ("dice", "iou", "dice_lesion", "iou_lesion")

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from fusiondx.config import ImageModality

        assert (
            src.cfg is not None
            and src.ids is not None
            and src.open_image is not None
            and info.image
        )
        df, ids, col = src.df, src.ids, info.label[0]
        image = src.cfg.modality(info.image)
        assert isinstance(image, ImageModality)  # the config checks that info.image is one
        size = tuple(image.preprocessing.size)
        out = np.zeros((len(df), 1, *size), dtype=np.uint8)
        has_image = df[image.column].notna().to_numpy()
        out[~has_image] = 255
        for pos in np.flatnonzero(df[col].notna().to_numpy()):
            cid, row = str(ids.iloc[pos]), line_of(int(pos))
            if not has_image[pos]:
                raise DataError(
                    "The case has a mask but no image.",
                    row=row,
                    column=col,
                    case_id=cid,
                    fix=f"add the image in column '{image.column}', or empty the mask cell",
                )
            arr, path = src.open_image(str(df[col].iloc[pos]), col, cid, row)
            if arr.ndim - 1 != len(size):
                raise DataError(
                    f"The mask is {arr.ndim - 1}D but the image modality is {len(size)}D.",
                    row=row,
                    column=col,
                    case_id=cid,
                    file=path,
                    fix="give a mask of the image's shape",
                )
            lesion = torch.from_numpy((arr.max(axis=0) > 0).astype(np.float32))[None, None]
            if tuple(lesion.shape[2:]) != size:
                # Area averaging then >= 0.5: a pixel of the resized mask is lesion when at least half
                # of the original pixels it covers are, matching the image's anti-aliased resize.
                lesion = F.interpolate(lesion, size=size, mode="area")
            out[pos, 0] = (lesion[0, 0] >= 0.5).numpy().astype(np.uint8)
        return out

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        return np.where((y.reshape(len(y), -1) == 1).any(axis=1), "lesion", "none")

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(y) == 0 or not bool((y == 1).any()):
            no_training(info, "lesion pixel")

    def head_output(self, info: TaskInfo, head: Any, raw: Any) -> np.ndarray:
        return (raw.sigmoid() >= head.threshold).numpy()

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from fusiondx.evaluation.regions import mask_metrics, mask_scores

        m = mask_metrics(mask_scores(np.asarray(output, dtype=bool), y))
        return {k: float(m[k]) for k in self.metrics}

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        from fusiondx.evaluation.regions import mask_scores

        t = info.name
        cols: dict[str, Any] = {f"{t}_pred_fraction": output.reshape(len(output), -1).mean(axis=1)}
        if y is not None:
            flat = y.reshape(len(y), -1)
            ignored = (flat == 255).all(axis=1)
            cols[f"{t}_lesion"] = np.where(ignored, np.nan, (flat == 1).any(axis=1).astype(float))
            scores = mask_scores(output, y)
            cols[f"{t}_dice"], cols[f"{t}_iou"] = scores["dice"], scores["iou"]
        return cols

    def output_columns(self, info: TaskInfo, frame: pd.DataFrame) -> list[str]:
        return [f"{info.name}_pred_fraction"]

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.weights import weighted_mean

        t = info.name
        dice, iou = frame[f"{t}_dice"].to_numpy(np.float64), frame[f"{t}_iou"].to_numpy(np.float64)
        lesion = frame[f"{t}_lesion"].to_numpy(np.float64) == 1
        on = {
            "dice": dice,
            "iou": iou,
            "dice_lesion": np.where(lesion, dice, np.nan),
            "iou_lesion": np.where(lesion, iou, np.nan),
        }

        def mean(v: np.ndarray) -> Scorer:
            return weighted(lambda w: weighted_mean(v, w), len(v))

        return {m: mean(on[m]) for m in self.metrics}

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        return frame[f"{info.name}_lesion"].fillna(-1).to_numpy().astype(int)

    def example(self, n: int, rng: np.random.Generator) -> Example:
        files: dict[str, np.ndarray] = {
            "volume.png": np.zeros((1, 4, 4, 4), np.uint8)
        }  # 3D for a 2D image: refused
        cells: list[str | None] = []
        for i in range(n):
            if i % 3 == 2:
                cells.append(None)  # no lesion
                continue
            m = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            r, c = rng.integers(0, IMAGE_SIZE // 2, 2)
            m[0, r : r + rng.integers(2, 8), c : c + rng.integers(2, 8)] = 1
            name = f"mask{i}.png"
            cells.append(name)
            files[name] = m
        return Example(
            {"name": "lesion_mask", "head": "segmentation", "label": "mask"},
            pd.DataFrame({"mask": cells, "image": [f"img{i}.png" for i in range(n)]}),
            perfect=lambda t: t == 1,
            noise=lambda t, g: g.random(t.shape) < 0.3,
            bad=(0, "mask", "volume.png"),
            files=files,
            modalities=[EXAMPLE_IMAGE],
        )
