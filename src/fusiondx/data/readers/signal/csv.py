"""Signals as CSV tables: a header row of lead names, then one row per sample."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import Example, SignalReader, SignalRecord
from fusiondx.data.readers._common import one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader

# Column names in a CSV that hold time stamps rather than a lead.
_TIME_COLUMNS = frozenset({"time", "t", "time_s"})


@register_reader("csv", kind="signal", suffixes=(".csv",))
class CsvSignalReader(SignalReader):
    """A table with one column per lead under a header row of lead names.

    ``,``, ``;`` or tab separated; a ``time``/``t``/``time_s`` column is dropped; empty cells and
    ``nan`` become NaN. The file carries no rate: it is ``source_rate``.
    """

    # A CSV cut at a line break is a valid, shorter table.
    detects_truncation = False

    def read(
        self,
        path: Path,
        *,
        source_rate: float | None = None,
        root: Path | None = None,
        lead_names: list[str] | None = None,
    ) -> SignalRecord:
        array, names = _read_table(path)
        rate = float(source_rate) if source_rate is not None else None
        return SignalRecord(array=array, rate=rate, lead_names=names, path=path)

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        values = np.round(rng.normal(size=(2, 30)), 3).astype(np.float32)
        path = folder / "ecg.csv"
        rows = ["time,I,II"] + [
            f"{t / 100:.2f},{a!r},{b!r}"
            for t, (a, b) in enumerate(zip(values[0].tolist(), values[1].tolist(), strict=True))
        ]
        path.write_text("\n".join(rows) + "\n")
        return Example(path, values, lead_names=["I", "II"])


def _read_table(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        # utf-8-sig drops the byte-order mark spreadsheet programs often write.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        with path.open(newline="", encoding="latin-1") as fh:
            text = fh.read()
    except OSError as exc:
        raise DataError(
            f"the CSV file cannot be opened ({one_line(exc)})",
            fix="check the file's permissions",
            file=path,
        ) from exc

    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(
            "the CSV file is empty",
            fix="write a header row of lead names and one row per sample",
            file=path,
        )
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0]), ",")
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    if all(_is_number(h) for h in header if h):
        raise DataError(
            "the CSV file has no header row (the first row is numbers)",
            fix="add a first row with one lead name per column, e.g. 'I,II,III'",
            file=path,
        )
    keep = [i for i, h in enumerate(header) if h.lower() not in _TIME_COLUMNS]
    if not keep:
        raise DataError(
            "the CSV file has no lead columns (only a time column)",
            fix="add one column per lead, with the lead name in the header row",
            file=path,
        )
    data_rows = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not data_rows:
        raise DataError(
            "the CSV file has a header but no samples",
            fix="write one row per sample under the header",
            file=path,
        )
    out = np.empty((len(keep), len(data_rows)), dtype=np.float32)
    for t, row in enumerate(data_rows):
        if len(row) != len(header):
            raise DataError(
                f"CSV line {t + 2} has {len(row)} values but the header has {len(header)} columns",
                fix="make every row have one value per header column",
                file=path,
            )
        for j, col in enumerate(keep):
            cell = row[col].strip()
            if cell == "" or cell.lower() in ("nan", "na"):
                out[j, t] = np.nan
                continue
            try:
                out[j, t] = float(cell)
            except ValueError:
                raise DataError(
                    f"CSV line {t + 2}, column '{header[col]}' holds '{cell}', not a number",
                    fix="write numbers only (a dot as decimal separator); leave missing samples "
                    "empty",
                    file=path,
                ) from None
    return out, [header[i] for i in keep]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
