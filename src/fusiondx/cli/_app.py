"""The `fusiondx` Typer app and what every command shares: the consoles, `--debug`, and
`guard`, which turns user errors and Ctrl-C into one message and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from fusiondx.errors import FusionDxError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="FusionDx: multimodal disease recognition from images, signals, text and tabular data.",
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    _state["debug"] = debug


def guard(fn: Callable[[], Any]) -> Any:
    """Run a command; user errors become one paragraph on stderr and exit code 2."""
    try:
        return fn()
    except FusionDxError as err:
        if _state["debug"]:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print(
            "interrupted; `fusiondx fit --resume` continues a run from its last checkpoint, "
            "and rerunning `fusiondx study` skips the trainings it finished"
        )
        raise typer.Exit(130) from None


def main() -> None:
    """The `fusiondx` console script."""
    try:
        app()
    except SystemExit as e:
        sys.exit(e.code)
