"""Localization: one box per case around the lesion, on an image modality.

Label: ``x0 y0 x1 y1`` in pixels of the image file (spaces or commas; x to the right, y down, the
top-left pixel's corner at 0, x1/y1 exclusive); an empty cell means no lesion. Targets: float32
(N, 4), ``x0/W, y0/H, x1/W, y1/H`` of the image, so a tight box of pixels ``[y0:y1, x0:x1]`` maps
to the same fractions at any resolution; NaN rows where a case has no box. ``predictions.csv``:
``t_pred_x0 .. t_pred_y1`` and ``t_true_x0 .. t_true_y1`` (fractions), ``t_iou``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError, line_of
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import (
    Example,
    LabelSource,
    Scorer,
    Shown,
    TaskInfo,
    no_training,
    spread,
    weighted,
)
from fusiondx.tasks._images import EXAMPLE_IMAGE, IMAGE_SIZE, OnImage

BOX_SIDES = ("x0", "y0", "x1", "y1")
_NUM = re.compile(r"[\s,;]+")
_COLORS = (("#2ca02c", "-"), ("#ff7f0e", "-"), ("#1f77b4", "--"))  # reference, model a, model b


def parse_box(cell: str) -> tuple[float, float, float, float] | None:
    """``'x0 y0 x1 y1'`` (spaces, commas or brackets) -> four floats, or None."""
    parts = [p for p in _NUM.split(cell.strip().strip("[]()")) if p]
    if len(parts) != 4:
        return None
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        return None
    return x0, y0, x1, y1


@register_task_type("box")
class Box(OnImage):
    """A lesion box per case; metrics IoU, detection rate (IoU >= 0.5) and centre error."""

    heads = ("localization",)
    drawn = "boxes"
    metrics = ("iou", "detection_rate", "center_error")

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        assert (
            src.cfg is not None
            and src.ids is not None
            and src.open_image is not None
            and info.image
        )
        df, ids, col = src.df, src.ids, info.label[0]
        image_col = src.cfg.modality(info.image).column  # type: ignore[union-attr]
        out = np.full((len(df), 4), np.nan, dtype=np.float32)
        for pos in np.flatnonzero(df[col].notna().to_numpy()):
            cell, cid, row = str(df[col].iloc[pos]), str(ids.iloc[pos]), line_of(int(pos))
            box = parse_box(cell)
            if box is None:
                raise DataError(
                    f"The box '{cell}' is not four numbers 'x0 y0 x1 y1'.",
                    row=row,
                    column=col,
                    case_id=cid,
                    fix="write the box as 'x0 y0 x1 y1' in pixels, or leave the cell empty",
                )
            if pd.isna(df[image_col].iloc[pos]):
                raise DataError(
                    "The case has a box but no image.",
                    row=row,
                    column=col,
                    case_id=cid,
                    fix=f"add the image in column '{image_col}', or empty the box cell",
                )
            array, path = src.open_image(str(df[image_col].iloc[pos]), image_col, cid, row)
            if array.ndim != 3:
                raise DataError(
                    "Boxes are supported for 2D images only; this image is 3D.",
                    row=row,
                    column=col,
                    case_id=cid,
                    file=path,
                    fix="use a segmentation mask for volumes",
                )
            h, w = array.shape[1], array.shape[2]
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise DataError(
                    f"The box '{cell}' does not fit the {w}x{h} image (need 0 <= x0 < x1 <= {w}, "
                    f"0 <= y0 < y1 <= {h}).",
                    row=row,
                    column=col,
                    case_id=cid,
                    file=path,
                    fix="give x0 y0 x1 y1 in pixels of this image, x1 and y1 exclusive",
                )
            out[pos] = (x0 / w, y0 / h, x1 / w, y1 / h)
        return out

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(y).all(axis=1), "lesion", "none")

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(y) == 0 or not bool(np.isfinite(y).all(axis=1).any()):
            no_training(info, "box")

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from fusiondx.evaluation.regions import box_metrics

        m = box_metrics(np.asarray(output, dtype=np.float32), np.asarray(y, dtype=np.float32))
        return {k: float(m[k]) for k in self.metrics}

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        from fusiondx.evaluation.regions import box_iou

        t = info.name
        cols: dict[str, Any] = {f"{t}_pred_{s}": output[:, k] for k, s in enumerate(BOX_SIDES)}
        if y is not None:
            cols |= {f"{t}_true_{s}": y[:, k] for k, s in enumerate(BOX_SIDES)}
            cols[f"{t}_iou"] = box_iou(output.astype(np.float64), y.astype(np.float64))
        return cols

    def output_columns(self, info: TaskInfo, frame: pd.DataFrame) -> list[str]:
        return [f"{info.name}_pred_{s}" for s in BOX_SIDES]

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.regions import box_metrics

        t = info.name
        pred = frame[[f"{t}_pred_{s}" for s in BOX_SIDES]].to_numpy(np.float64)
        true = frame[[f"{t}_true_{s}" for s in BOX_SIDES]].to_numpy(np.float64)

        def metric(m: str) -> Scorer:
            return weighted(lambda w: box_metrics(pred, true, w)[m], len(true))

        return {m: metric(m) for m in self.metrics}

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        return np.isfinite(frame[f"{info.name}_true_x0"].to_numpy(np.float64)).astype(int)

    def samples(
        self, info: TaskInfo, a: Shown, b: Shown, load_image: Callable[[str], np.ndarray]
    ) -> dict[str, Any] | None:
        """Test cases with a lesion, drawn with the reference box and both models' boxes."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        t, fa, fb = info.name, a.frame, b.frame
        true = fa[[f"{t}_true_{s}" for s in BOX_SIDES]].to_numpy(float)
        picks = spread(np.flatnonzero(np.isfinite(true).all(axis=1)))
        fig, axes = plt.subplots(1, max(len(picks), 1), figsize=(2.3 * max(len(picks), 1), 2.6))
        axes = np.atleast_1d(axes)
        for ax, i in zip(axes, picks, strict=False):
            cid = str(fa.index[i])
            img = load_image(cid)
            img = img.mean(axis=0) if img.shape[0] > 1 else img[0]
            h, w = img.shape
            ax.imshow(img, cmap="gray")
            for frame, (color, style) in zip((fa, fa, fb), _COLORS, strict=True):
                prefix = "true" if color == _COLORS[0][0] else "pred"
                x0, y0, x1, y1 = (float(frame[f"{t}_{prefix}_{s}"].iloc[i]) for s in BOX_SIDES)
                ax.add_patch(
                    Rectangle(
                        (x0 * w - 0.5, y0 * h - 0.5),
                        (x1 - x0) * w,
                        (y1 - y0) * h,
                        fill=False,
                        edgecolor=color,
                        linestyle=style,
                        linewidth=1.6,
                    )
                )
            iou_a, iou_b = float(fa[f"{t}_iou"].iloc[i]), float(fb[f"{t}_iou"].iloc[i])
            ax.set_title(f"{cid}\nIoU {iou_a:.2f} vs {iou_b:.2f}", fontsize=8)
            ax.axis("off")
        fig.legend(
            handles=[
                Rectangle((0, 0), 1, 1, fill=False, edgecolor=c, linestyle=s) for c, s in _COLORS
            ],
            labels=["reference", a.label, b.label],
            loc="lower center",
            ncol=3,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, -0.06),
        )
        return {
            "kind": self.name,
            "a": a.id,
            "b": b.id,
            "figure": fig,
            "cases": [str(fa.index[i]) for i in picks],
        }

    def samples_html(
        self, samples: dict[str, Any], name: Callable[[str], str], figure: Callable[[str, str], str]
    ) -> str:
        return figure(
            samples["figure"],
            f"Test cases with a lesion: the reference box (green), "
            f"{html.escape(name(samples['a']))} (orange) and "
            f"{html.escape(name(samples['b']))} (blue, dashed); IoU of each model above.",
        )

    def example(self, n: int, rng: np.random.Generator) -> Example:
        x0, y0 = rng.integers(0, IMAGE_SIZE // 2, (2, n))
        w, h = rng.integers(2, IMAGE_SIZE // 2, (2, n))
        cells = [
            f"{a} {b} {a + c} {b + d}" if i % 3 != 2 else None  # every third case: no lesion
            for i, (a, b, c, d) in enumerate(zip(x0, y0, w, h, strict=True))
        ]
        images = [f"img{i}.png" for i in range(n)]
        return Example(
            {"name": "lesion", "head": "localization", "label": "lesion"},
            pd.DataFrame({"lesion": cells, "image": images}),
            perfect=lambda t: np.where(
                np.isfinite(t), t, np.array([0.25, 0.25, 0.75, 0.75], dtype=np.float32)
            ).astype(np.float32),
            # x0, y0 and then x1 > x0, y1 > y0, as fractions of the image
            noise=lambda t, g: (
                np.cumsum(g.uniform(0.05, 0.45, (len(t), 2, 2)), axis=1)
                .reshape(len(t), 4)
                .astype(np.float32)
            ),
            bad=(1, "lesion", "3 4 5"),
            files={f: np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.float32) for f in images},
            modalities=[EXAMPLE_IMAGE],
        )
