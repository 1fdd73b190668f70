"""A bad request as the API answers it: a 4xx JSON body naming the field, the problem and the fix.

Every :class:`~fusiondx.errors.FusionDxError` becomes one (a reader's ``DataError`` names the
manifest column, which :func:`body` turns back into the form field the client used); anything
else is a 500 whose body says only that the server failed (the traceback goes to the log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusiondx.errors import FusionDxError


class RequestError(FusionDxError):
    """The request itself is wrong: a field, a file, the size, the token."""

    def __init__(
        self, what: str, *, field: str | None = None, fix: str | None = None, status: int = 422
    ) -> None:
        super().__init__(what, fix=fix, column=field)
        self.status = status

    @property
    def field(self) -> str | None:
        return self.column


def body(
    err: FusionDxError, fields: dict[str, str] | None = None, hide: Path | None = None
) -> dict[str, Any]:
    """The JSON answer to ``err``: ``{"error", "field", "fix"}``.

    ``fields`` maps manifest columns to form fields (a reader names the column it read);
    ``hide`` is the server's private upload folder, never shown to a client.
    """
    field = err.column
    if fields and field in fields:
        field = fields[field]
    text = err.what
    if hide is not None:
        for form in (str(hide.resolve()), str(hide)):
            text = text.replace(form + "/", "").replace(form, "<upload>")
    out: dict[str, Any] = {"error": text, "field": field, "fix": err.fix}
    if err.case_id is not None:
        out["case_id"] = err.case_id
    return out
