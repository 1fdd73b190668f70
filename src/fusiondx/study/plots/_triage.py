"""The selective-prediction curve: accuracy of the cases a model keeps when it refers the least
certain to an expert first."""

from __future__ import annotations

from typing import Any

from fusiondx.study.plots._style import figure_uri, subplots, text


def selective_chart(curves: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Accuracy against the share of cases kept; curves = (label, colour, {"kept", "accuracy"})."""
    fig, ax = subplots(figsize=(7.2, 4.6))
    for label, color, c in curves:
        ax.plot(
            [100 * k for k in c["kept"]],
            c["accuracy"],
            marker="o",
            ms=4,
            lw=2,
            color=color,
            label=text(label),
        )
    ax.set(
        xlabel="share of test cases kept (%), the least certain referred first",
        ylabel="accuracy of the kept cases",
        title="Selective prediction (triage)",
        xlim=(102, 0),
    )
    ax.legend(loc="lower left")
    return figure_uri(fig)
