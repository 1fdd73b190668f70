"""The `fusiondx` command line: `app` (the Typer app) and `main` (the console script).

Each group of commands lives in its own module and registers itself on `app` when imported, so
the order of the imports below is the order of the commands in `fusiondx --help`.
"""

from __future__ import annotations

from fusiondx.cli._app import app, main

# isort: split
# (the splits keep the import sorter from reordering the commands)
from fusiondx.cli import run_commands  # noqa: F401  validate, fit, evaluate, predict, export

# isort: split
from fusiondx.cli import distill_command  # noqa: F401  distill

# isort: split
from fusiondx.cli import explain_commands  # noqa: F401  explain

# isort: split
from fusiondx.cli import serve_command  # noqa: F401  serve

# isort: split
from fusiondx.cli import suggest_command  # noqa: F401  suggest

# isort: split
from fusiondx.cli import federate_command  # noqa: F401  federate

# isort: split
from fusiondx.cli import pretrain_commands  # noqa: F401  pretrain, retrieve

# isort: split
from fusiondx.cli import list_command  # noqa: F401  list

# isort: split
from fusiondx.cli import data_commands  # noqa: F401  cohort, prepare

# isort: split
from fusiondx.cli import study_commands  # noqa: F401  study, search, demo

__all__ = ["app", "main"]
