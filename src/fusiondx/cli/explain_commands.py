"""`fusiondx explain`: why a trained run predicts what it does for one case."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fusiondx.cli._app import app, console, guard


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx fit`.")],
    case: Annotated[str, typer.Option("--case", help="The case id to explain.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Manifest holding the case (default: the run's own)."),
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Data root of --data (default: its folder).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write (default RUN/explanations/CASE/)."),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Classification task (default: the first).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="Class to explain (default: the positive class of a binary task, else the "
            "predicted class).",
        ),
    ] = None,
) -> None:
    """Explain one case: exact modality Shapley values (a waterfall from the base rate to the
    prediction), Grad-CAM on images, Integrated Gradients on signals, text tokens and tabular
    values; writes explanation.html, explanation.json and PNGs.

    Example: `fusiondx explain runs/demo --case case_00042` then open
    runs/demo/explanations/case_00042/explanation.html
    """
    from fusiondx.explanations import explain_case

    def run() -> None:
        e = explain_case(run_dir, case, data=data, root=root, out=out, task=task, target=target)
        parts = ", ".join(f"{m} {v:+.3f}" for m, v in e.shapley.items())
        console.print(
            f"Case {e.case_id}: P({e.explained}) = {e.probability:.3f} (base {e.base:.3f}; "
            f"Shapley {parts})"
        )
        console.print(f"Wrote [bold]{e.page}[/]")

    guard(run)
