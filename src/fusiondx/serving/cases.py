"""From a request's fields to manifest rows whose files the server wrote itself.

A case arrives as form fields (``POST /predict``) or as one JSON object of a batch: one field per
image or signal modality holding its file(s), one per text modality holding the text, and the
tabular columns as fields of their own or as one JSON object under the tabular modality's name.
Every file is checked by content (:mod:`fusiondx.serving.formats`) and written into a private
folder under a name the server chooses; the row then names those files, so that the run's own
preprocessing (the confined readers of training) decodes the case. No path of the request is
ever used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config import Config
from fusiondx.errors import did_you_mean
from fusiondx.serving.errors import RequestError
from fusiondx.serving.formats import Upload, image_suffix, signal_suffix, wfdb_header

ID_FIELD = "case_id"


@dataclass
class CaseInput:
    """One case as the client sent it (before anything is decoded)."""

    case_id: str
    files: dict[str, list[Upload]] = field(default_factory=dict)  # modality -> its upload(s)
    texts: dict[str, str] = field(default_factory=dict)  # text modality -> the text
    values: dict[str, Any] = field(default_factory=dict)  # tabular column -> value


@dataclass(frozen=True)
class Schema:
    """The inputs a run's model takes, by form field."""

    cfg: Config

    @property
    def files(self) -> dict[str, str]:
        """Image / signal modality -> its kind."""
        return {m.name: m.kind for m in self.cfg.modalities if m.kind in ("image", "signal")}

    @property
    def texts(self) -> list[str]:
        return [m.name for m in self.cfg.modalities if m.kind == "text"]

    @property
    def tabular(self) -> dict[str, list[str]]:
        """Tabular modality -> its columns."""
        return {m.name: list(m.columns) for m in self.cfg.modalities if m.kind == "tabular"}

    @property
    def columns(self) -> list[str]:
        return [c for cols in self.tabular.values() for c in cols]

    @property
    def fields(self) -> list[str]:
        return [*self.files, *self.texts, *self.tabular, *self.columns, ID_FIELD]

    def field_of_column(self) -> dict[str, str]:
        """Manifest column -> the form field that fills it (for error messages)."""
        out = {m.column: m.name for m in self.cfg.modalities if m.kind != "tabular"}
        out.update({c: c for c in self.columns})
        return out

    def unknown(self, name: str, where: str = "") -> RequestError:
        return RequestError(
            f"The field '{where}{name}' is not an input of this model.{did_you_mean(name, self.fields)}",
            field=f"{where}{name}",
            fix="send only these fields: " + ", ".join(self.fields) + " (GET /model lists them)",
        )


def from_form(schema: Schema, items: list[tuple[str, Any]], case_id: str = "case") -> CaseInput:
    """A case from multipart fields: ``(name, str | (filename, bytes))`` pairs."""
    case = CaseInput(case_id)
    for name, value in items:
        if isinstance(value, tuple):
            filename, data = value
            if name not in schema.files:
                raise (
                    schema.unknown(name)
                    if name not in schema.fields
                    else RequestError(
                        f"The field '{name}' takes text or a value, not a file.",
                        field=name,
                        fix=f"send '{name}' as a plain form field",
                    )
                )
            if data:
                case.files.setdefault(name, []).append(Upload(name, data, filename))
            continue
        _put(schema, case, name, value, "")
    return _not_empty(case, "")


def from_json(schema: Schema, obj: Any, where: str) -> CaseInput:
    """A case of ``POST /predict/batch``: files as base64 strings (a list for a WFDB pair)."""
    import base64
    import binascii

    if not isinstance(obj, dict):
        raise RequestError(
            f"{where.rstrip('.')} is not a JSON object.",
            field=where.rstrip("."),
            fix='send each case as {"cxr": "<base64>", "report": "...", "labs": {...}}',
        )
    case = CaseInput(str(obj.get(ID_FIELD, where.strip(".").replace("cases", "case"))))
    for name, value in obj.items():
        if name in schema.files:
            parts = value if isinstance(value, list) else [value]
            for part in parts:
                if part is None or part == "":
                    continue
                try:
                    data = base64.b64decode(str(part), validate=True)
                except (binascii.Error, ValueError):
                    raise RequestError(
                        f"The field '{where}{name}' is not base64.",
                        field=f"{where}{name}",
                        fix="encode each file's bytes as base64 (a list of two for a WFDB pair)",
                    ) from None
                case.files.setdefault(name, []).append(Upload(f"{where}{name}", data))
        else:
            _put(schema, case, name, value, where)
    return _not_empty(case, where)


def _not_empty(case: CaseInput, where: str) -> CaseInput:
    if not (case.files or case.texts or case.values):
        raise RequestError(
            f"{where.rstrip('.') or 'The request'} holds no input of the model.",
            field=where.rstrip(".") or None,
            fix="send at least one modality (GET /model lists the fields)",
        )
    return case


def _put(schema: Schema, case: CaseInput, name: str, value: Any, where: str) -> None:
    if name == ID_FIELD:
        case.case_id = str(value)
    elif name in schema.texts:
        if not isinstance(value, str):
            raise RequestError(
                f"The field '{where}{name}' must be text.",
                field=f"{where}{name}",
                fix="send a string",
            )
        if value.strip():
            case.texts[name] = value
    elif name in schema.tabular:
        obj = value
        if isinstance(value, str):
            try:
                obj = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as e:
                raise RequestError(
                    f"The field '{where}{name}' is not valid JSON ({e.msg}).",
                    field=f"{where}{name}",
                    fix='send an object of column -> value, e.g. {"age": 61, "sex": "F"}',
                ) from None
        if not isinstance(obj, dict):
            raise RequestError(
                f"The field '{where}{name}' must be a JSON object of column -> value.",
                field=f"{where}{name}",
                fix='send e.g. {"age": 61, "sex": "F"}',
            )
        for col, v in obj.items():
            if col not in schema.tabular[name]:
                raise RequestError(
                    f"'{col}' is not a column of the tabular input '{name}'."
                    f"{did_you_mean(str(col), schema.tabular[name])}",
                    field=f"{where}{name}.{col}",
                    fix="use the columns: " + ", ".join(schema.tabular[name]),
                )
            _value(case, str(col), v, where)
    elif name in schema.columns:
        _value(case, name, value, where)
    elif name in schema.files:
        raise RequestError(
            f"The field '{where}{name}' takes a file ({schema.files[name]}), not a text value.",
            field=f"{where}{name}",
            fix=f"upload the file as '{name}' (multipart file field)",
        )
    else:
        raise schema.unknown(name, where)


def _value(case: CaseInput, col: str, v: Any, where: str) -> None:
    if isinstance(v, (dict, list)):
        raise RequestError(
            f"The value of '{where}{col}' is a JSON {type(v).__name__}, not a number or a category.",
            field=f"{where}{col}",
            fix="send one number or one category per column",
        )
    if v is None or (isinstance(v, str) and not v.strip()):
        return  # missing, as an empty manifest cell
    if isinstance(v, float) and not math.isfinite(v):
        v = str(v)  # reported by the tabular checks as not a finite number
    case.values[col] = v if isinstance(v, str) else v


def write_rows(
    schema: Schema, cases: list[CaseInput], folder: Path, prefix: str = ""
) -> pd.DataFrame:
    """Write every case's files into ``folder`` and return the manifest rows naming them
    (``prefix`` + their path relative to ``folder``: relative to the data root the readers are
    confined to)."""
    cfg = schema.cfg
    rows: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        sub = folder / f"c{i}"
        sub.mkdir()
        row: dict[str, Any] = {cfg.data.id_column: case.case_id}
        for m in cfg.modalities:
            if m.kind == "tabular":
                for c in m.columns:
                    row[c] = case.values.get(c, np.nan)
                continue
            col = m.column
            row[col] = np.nan
            if m.kind == "text" and m.name in case.texts:
                # Through a file the server names, so no text is ever taken for a path.
                (sub / f"{m.name}.txt").write_text(case.texts[m.name], encoding="utf-8")
                row[col] = f"{prefix}c{i}/{m.name}.txt"
            elif m.name in case.files:
                row[col] = f"{prefix}c{i}/" + _write_file(m.kind, m.name, case.files[m.name], sub)
        rows.append(row)
    return pd.DataFrame(rows, dtype=object)


def _write_file(kind: str, name: str, ups: list[Upload], sub: Path) -> str:
    """Write one modality's upload(s) under ``sub``; the name the manifest cell holds."""
    if kind == "signal" and any(wfdb_header(u.data) for u in ups) and len(ups) > 1:
        return _write_wfdb(name, ups, sub)
    if len(ups) > 1:
        raise RequestError(
            f"The field '{ups[0].field}' holds {len(ups)} files; it takes one"
            + (" (two only as a WFDB .hea + .dat pair)." if kind == "signal" else "."),
            field=ups[0].field,
            fix="upload one file per modality",
        )
    up = ups[0]
    suffix = image_suffix(up) if kind == "image" else signal_suffix(up)
    (sub / f"{name}{suffix}").write_bytes(up.data)
    return f"{name}{suffix}"


def _write_wfdb(name: str, ups: list[Upload], sub: Path) -> str:
    """A WFDB pair: the header rewritten to name the server's record and data file."""
    heads = [u for u in ups if wfdb_header(u.data)]
    data = [u for u in ups if not wfdb_header(u.data)]
    fld = ups[0].field
    if len(heads) != 1 or len(data) != 1:
        raise RequestError(
            f"The field '{fld}' holds {len(heads)} WFDB header(s) and {len(data)} data file(s); "
            "a record is one of each.",
            field=fld,
            fix="upload exactly the record's .hea and its .dat",
        )
    parsed = wfdb_header(heads[0].data)
    assert parsed is not None
    _, files = parsed
    if len(set(files)) != 1:
        raise RequestError(
            f"The WFDB header uploaded as '{fld}' spreads its signals over {len(set(files))} "
            "data files; the service takes records with one data file.",
            field=fld,
            fix="convert the record to a single .dat file (e.g. wfdb.wrsamp)",
        )
    lines = heads[0].data.decode("utf-8-sig").splitlines()
    out, n_signals = [], len(files)
    seen_record = False
    for ln in lines:
        if not ln.strip() or ln.startswith("#"):
            out.append(ln)
        elif not seen_record:
            parts = ln.split()
            parts[0] = name + ("/" + parts[0].split("/", 1)[1] if "/" in parts[0] else "")
            out.append(" ".join(parts))
            seen_record = True
        elif n_signals > 0:
            parts = ln.split()
            parts[0] = f"{name}.dat"
            out.append(" ".join(parts))
            n_signals -= 1
        else:
            out.append(ln)
    (sub / f"{name}.hea").write_text("\n".join(out) + "\n", encoding="utf-8")
    (sub / f"{name}.dat").write_bytes(data[0].data)
    return f"{name}.hea"
