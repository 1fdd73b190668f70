"""`fusiondx suggest`: rank unlabelled cases for expert labelling with a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fusiondx.cli._app import app, console, err_console, guard


@app.command()
def suggest(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx fit`.")],
    pool: Annotated[
        Path,
        typer.Option("--pool", help="Manifest of unlabelled cases to rank (labels are ignored)."),
    ],
    n: Annotated[int, typer.Option("--n", help="How many cases to suggest.")] = 50,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="How uncertainty is scored: entropy, margin or least_confident "
            "(`fusiondx list acquisitions`).",
        ),
    ] = "entropy",
    diversity: Annotated[
        bool,
        typer.Option(
            "--diversity",
            help="Pick a batch that is uncertain and spread out: k-center greedy on the fused "
            "features among the 4n most uncertain cases.",
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the ranked list (CSV).")
    ] = Path("suggestions.csv"),
    root: Annotated[
        Path | None, typer.Option("--root", help="Data root of --pool (default: its folder).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace --out even if it is not an earlier suggestions file (never the pool).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress.")] = False,
) -> None:
    """Rank unlabelled cases for an expert to label next (active learning), most useful first.

    Cases are scored by how unsure the run's classification task(s) are; each row of the CSV
    gives its rank, score, predicted class and probability, the reason in words and the
    modalities present. Cases with no modality, and cases the run trained on, are listed last,
    not ranked.

    Example: `fusiondx suggest runs/demo --pool unlabelled.csv --n 50 --diversity --out to_label.csv`
    """
    from fusiondx.engine.suggest import suggest as suggest_cases

    def say(line: str) -> None:
        if not quiet:
            err_console.print(escape(line), highlight=False, soft_wrap=True)

    def run() -> None:
        result = suggest_cases(
            run_dir,
            pool,
            n=n,
            strategy=strategy,
            diversity=diversity,
            out=out,
            root=root,
            overwrite=overwrite,
            progress=not quiet,
            notify=say,
        )
        for note in result.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        left = len(result.table) - result.ranked
        console.print(
            f"Wrote {result.ranked} suggestions ({strategy}"
            f"{' + diversity' if diversity else ''}) of {result.pool} pool cases to "
            f"[bold]{escape(str(out))}[/]"
            + (f", then {left} case(s) not ranked with the reason" if left else ""),
            highlight=False,
            soft_wrap=True,
        )

    guard(run)
