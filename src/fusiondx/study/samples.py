"""Test cases to look at, for tasks whose output is read or seen rather than scored: generated
findings beside the reference, predicted boxes drawn on the image."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.config import Config
from fusiondx.data.targets import TaskInfo
from fusiondx.evaluation.predictions import BOX_SIDES
from fusiondx.study.analysis import EntryData

N_SAMPLES = 6


def samples(a: EntryData, b: EntryData, info: TaskInfo, cfg: Config) -> dict[str, Any] | None:
    """A few test cases of the winner ``a`` and the best single model ``b`` (their first seeds)."""
    if info.type == "text":
        return _texts(a, b, info)
    if info.type == "box":
        return _boxes(a, b, info, cfg)
    return None


def _spread(candidates: np.ndarray, n: int = N_SAMPLES) -> np.ndarray:
    """Evenly spaced picks, so the samples are not the first rows of a sorted table."""
    if len(candidates) <= n:
        return candidates
    return candidates[np.linspace(0, len(candidates) - 1, n).round().astype(int)]


def _texts(a: EntryData, b: EntryData, info: TaskInfo) -> dict[str, Any]:
    t = info.name
    fa, fb = a.frames[0], b.frames[0]
    has_ref = np.flatnonzero(fa[f"{t}_true"].fillna("").astype(str).str.len().to_numpy() > 0)
    rows = [{"case_id": str(fa.index[i]), "reference": _readable(fa[f"{t}_true"].iloc[i]),
             "a": _readable(fa[f"{t}_pred"].iloc[i]), "b": _readable(fb[f"{t}_pred"].iloc[i])}
            for i in _spread(has_ref)]
    return {"kind": "text", "a": a.entry.id, "b": b.entry.id, "rows": rows}


def _readable(text: Any) -> str:
    """Words as the model writes them ('there is mild cardiomegaly .') -> a sentence."""
    s = " ".join(str(text if isinstance(text, str) else "").split())
    for p in (".", ",", ";", ":", "?", "!"):
        s = s.replace(f" {p}", p)
    return ". ".join(x[:1].upper() + x[1:] for x in s.split(". "))


def _boxes(a: EntryData, b: EntryData, info: TaskInfo, cfg: Config) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from fusiondx.data.manifest import read_manifest, resolve_path
    from fusiondx.data.readers.image import read_image
    from fusiondx.study.plots import _uri

    t = info.name
    fa, fb = a.frames[0], b.frames[0]
    true = fa[[f"{t}_true_{s}" for s in BOX_SIDES]].to_numpy(float)
    picks = _spread(np.flatnonzero(np.isfinite(true).all(axis=1)))
    df = read_manifest(cfg.data.manifest, sep=cfg.data.sep).set_index(cfg.data.id_column)
    column = cfg.modality(info.image).column  # type: ignore[union-attr, arg-type]
    fig, axes = plt.subplots(1, max(len(picks), 1), figsize=(2.3 * max(len(picks), 1), 2.6))
    axes = np.atleast_1d(axes)
    for ax, i in zip(axes, picks, strict=False):
        cid = str(fa.index[i])
        path = resolve_path(str(df.loc[cid, column]), cfg.data.data_root, column=column, case_id=cid, row=0)
        img = read_image(path).array
        img = img.mean(axis=0) if img.shape[0] > 1 else img[0]
        h, w = img.shape
        ax.imshow(img, cmap="gray")
        for frame, color, style in ((fa, "#2ca02c", "-"), (fa, "#ff7f0e", "-"), (fb, "#1f77b4", "--")):
            prefix = "true" if color == "#2ca02c" else "pred"
            x0, y0, x1, y1 = (float(frame[f"{t}_{prefix}_{s}"].iloc[i]) for s in BOX_SIDES)
            ax.add_patch(Rectangle((x0 * w - 0.5, y0 * h - 0.5), (x1 - x0) * w, (y1 - y0) * h, fill=False,
                                   edgecolor=color, linestyle=style, linewidth=1.6))
        iou_a, iou_b = float(fa[f"{t}_iou"].iloc[i]), float(fb[f"{t}_iou"].iloc[i])
        ax.set_title(f"{cid}\nIoU {iou_a:.2f} vs {iou_b:.2f}", fontsize=8)
        ax.axis("off")
    fig.legend(handles=[Rectangle((0, 0), 1, 1, fill=False, edgecolor=c, linestyle=s) for c, s in
                        (("#2ca02c", "-"), ("#ff7f0e", "-"), ("#1f77b4", "--"))],
               labels=["reference", a.entry.label, b.entry.label], loc="lower center", ncol=3, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.06))
    return {"kind": "box", "a": a.entry.id, "b": b.entry.id, "figure": _uri(fig),
            "cases": [str(fa.index[i]) for i in picks]}
