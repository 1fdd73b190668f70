"""Matplotlib figures of the study report, each returned as a ``data:image/png;base64`` URI.

Every function draws one figure from plain numbers (no I/O besides the PNG in memory) and closes
it. The caller selects the Agg backend first (:func:`fusiondx.study.report.write_report` does).
Colours follow the Okabe-Ito palette, which stays distinct for colour-blind readers.
"""

from __future__ import annotations

from fusiondx.study.plots._classifier import calibration_chart, confusion_chart, roc_pr_chart
from fusiondx.study.plots._cost import cost_chart
from fusiondx.study.plots._fairness import subgroup_chart
from fusiondx.study.plots._modalities import ablation_chart, missing_chart, removed_chart
from fusiondx.study.plots._ranking import ranked_chart
from fusiondx.study.plots._style import (
    DPI,
    HIGHLIGHT,
    KIND_COLORS,
    KIND_NAMES,
    MOD_PALETTE,
    PALETTE,
    STYLE,
    figure_uri,
    num,
    signed,
    text,
)
from fusiondx.study.plots._training import training_chart
from fusiondx.study.plots._triage import selective_chart

__all__ = [
    "DPI",
    "HIGHLIGHT",
    "KIND_COLORS",
    "KIND_NAMES",
    "MOD_PALETTE",
    "PALETTE",
    "STYLE",
    "ablation_chart",
    "calibration_chart",
    "confusion_chart",
    "cost_chart",
    "figure_uri",
    "missing_chart",
    "num",
    "ranked_chart",
    "subgroup_chart",
    "removed_chart",
    "roc_pr_chart",
    "selective_chart",
    "signed",
    "text",
    "training_chart",
]
