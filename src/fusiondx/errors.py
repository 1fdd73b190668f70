"""Errors a user can meet, each saying what went wrong, where, and how to fix it.

Every error raised because of the user's data or configuration is a :class:`FusionDxError`.
The CLI prints its message as one paragraph and exits non-zero, without a traceback unless
``--debug`` is given. Code deep inside readers raises these with the location it knows
(file, row, column, case id) and callers add what they know with :meth:`FusionDxError.at`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

_E = TypeVar("_E", bound="FusionDxError")


class FusionDxError(Exception):
    """Base class for every error caused by user input.

    Args:
        what: one sentence on what is wrong.
        fix: how to fix it.
        file: the file concerned, if any.
        case_id: the case (row) concerned, if any.
        row: line of the manifest file, counting the header as line 1, if known.
        column: the manifest column concerned, if any.
    """

    def __init__(
        self,
        what: str,
        *,
        fix: str | None = None,
        file: str | Path | None = None,
        case_id: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.what = what
        self.fix = fix
        self.file = str(file) if file is not None else None
        self.case_id = case_id
        self.row = row
        self.column = column
        super().__init__(self._render())

    def at(
        self: _E,
        *,
        file: str | Path | None = None,
        case_id: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> _E:
        """Fill in location fields that are still unknown and return self (for re-raising)."""
        if self.file is None and file is not None:
            self.file = str(file)
        if self.case_id is None and case_id is not None:
            self.case_id = case_id
        if self.row is None and row is not None:
            self.row = row
        if self.column is None and column is not None:
            self.column = column
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        return self.describe()

    def describe(self, *, column: bool = True, file: bool = True, fix: bool = True) -> str:
        """The message, leaving out the column, file or fix where a listing already says them."""
        where = []
        if self.case_id is not None:
            where.append(f"case '{self.case_id}'")
        if self.row is not None:
            where.append(f"manifest line {self.row}")
        if column and self.column is not None:
            where.append(f"column '{self.column}'")
        if file and self.file is not None:
            where.append(f"file '{self.file}'")
        text = self.what if self.what.endswith(("?", "!")) else self.what.rstrip(".") + "."
        if where:
            text += " Where: " + ", ".join(where) + "."
        if fix and self.fix:
            text += " Fix: " + self.fix.rstrip(".") + "."
        return text

    def __str__(self) -> str:
        return self._render()


class ConfigError(FusionDxError):
    """The YAML config or an option in it is invalid."""


class DataError(FusionDxError):
    """The manifest, or a file it points to, cannot be used as it is."""


class RunError(FusionDxError):
    """A run directory is missing or incomplete."""


def summarise(errors: Sequence[FusionDxError], file: str | Path) -> FusionDxError:
    """One error standing for several: the first, with a count of the others and where they are.

    The result (a new error of the first one's class, located in ``file`` unless it names its
    own) keeps the whole list as ``all_errors``, which ``fusiondx validate`` prints.
    """
    first = errors[0]
    what = first.what
    if len(errors) > 1:
        rest = errors[1:]
        columns = list(dict.fromkeys(e.column for e in rest if e.column))
        cases = list(dict.fromkeys(e.case_id for e in rest if e.case_id))
        where = []
        if columns:
            shown = ", ".join(f"'{c}'" for c in columns[:5]) + (", ..." if len(columns) > 5 else "")
            where.append(f"in column(s) {shown}")
        if cases:
            where.append(f"e.g. case(s) {', '.join(cases[:5])}")
        what = (
            f"{what.rstrip('.')}. {len(rest)} other problem(s) too"
            f"{' (' + '; '.join(where) + ')' if where else ''}; `fusiondx validate` lists them all"
        )
    out = type(first)(
        what,
        fix=first.fix,
        file=first.file or file,
        case_id=first.case_id,
        row=first.row,
        column=first.column,
    )
    out.all_errors = list(errors)  # type: ignore[attr-defined]
    return out


def line_of(position: int) -> int:
    """Line of the manifest file holding data row ``position`` (0-based), the header being line 1."""
    return position + 2


def case_of(ids: Any, position: int) -> str | None:
    """The case id of data row ``position`` of ``ids`` (a pandas Series), or None where there is
    no id to name."""
    import pandas as pd

    if ids is None:
        return None
    value = ids.iloc[position]
    return None if pd.isna(value) else str(value)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
