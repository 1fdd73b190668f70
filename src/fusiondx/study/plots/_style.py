"""The look every study figure shares: palettes, the matplotlib style, number helpers, axis
limits and the PNG data URI a figure becomes."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

DPI = 110
KIND_COLORS = {
    "single": "#0072B2",
    "fusion": "#D55E00",
    "ablation": "#CC79A7",
    "tuned": "#E69F00",
    "reference": "#009E73",
    "probe": "#7B8794",
}
KIND_NAMES = {
    "single": "single modality",
    "fusion": "fusion",
    "ablation": "ablation",
    "tuned": "tuned",
    "reference": "reference (scikit-learn)",
    "probe": "shortcut probe",
}
PALETTE = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B"]
MOD_PALETTE = [
    "#332288",
    "#117733",
    "#CC6677",
    "#DDAA33",
    "#44AA99",
    "#AA4499",
    "#88CCEE",
    "#882255",
]  # Paul Tol's muted scheme: modalities, distinct from the kind colours
HIGHLIGHT = "#FFF1C2"
STYLE: dict[RcKeyType, Any] = {
    "font.size": 11,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.edgecolor": "#555555",
    "axes.titlepad": 10,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": "#222222",
    "axes.labelcolor": "#222222",
}


def text(s: Any) -> str:
    """A user string safe for matplotlib (no mathtext from '$')."""
    return str(s).replace("$", r"\$")


def num(x: Any) -> float:
    """A float, NaN for anything missing or not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def figure_uri(fig: Any) -> str:
    """The figure as a ``data:image/png;base64`` URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def subplots(*args: Any, **kw: Any) -> tuple[Any, Any]:
    """``plt.subplots``, with pyplot imported only when a figure is drawn."""
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def lower_limit(values: Sequence[float], pad: float = 0.05) -> float:
    """A lower y limit under the smallest finite value, on a 0.05 grid, never below 0."""
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return 0.0
    return max(0.0, math.floor((min(vals) - pad) / 0.05) * 0.05)


def upper_limit(values: Sequence[float]) -> float:
    """An upper limit: 1 for values up to 1 (scores), else 5% above the largest."""
    vals = [v for v in values if math.isfinite(v)]
    return 1.0 if not vals or max(vals) <= 1.0 else max(vals) * 1.05


def error_bars(rows: Sequence[dict[str, Any]]) -> list[list[float]]:
    """Matplotlib's (below, above) error lengths of rows with mean, low, high; 0 where unknown."""
    lo = [max(0.0, r["mean"] - r["low"]) if math.isfinite(r["low"]) else 0.0 for r in rows]
    hi = [max(0.0, r["high"] - r["mean"]) if math.isfinite(r["high"]) else 0.0 for r in rows]
    return [lo, hi]


def signed(v: float) -> str:
    """'+0.012' / '−0.070' with a real minus sign."""
    return f"{v:+.3f}".replace("-", "−")
