"""The manifest: one row per case, read without altering what the user wrote.

CSV cells are read as text (only an empty cell counts as missing, so a report that says "None"
or a category "NA" stays what it is); numeric tabular columns are converted later, with an error
naming the case and column for any value that is not a number.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.config import Config, TabularModality
from fusiondx.errors import DataError, case_of, did_you_mean, line_of, summarise

SEPARATORS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def read_manifest(path: Path, *, sep: str = ",", id_column: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet manifest; cells are strings and an empty cell is NaN (missing).

    Args:
        path: the manifest.
        sep: the CSV column separator (``data.sep``).
        id_column: the case id column; when the CSV header lacks it under ``sep`` but holds it
            under another common separator, the error says so (instead of 'no column').
    """
    if not path.is_file():
        raise DataError(
            "The manifest file does not exist.",
            file=path,
            fix="check data.manifest in the config (relative paths start at the config's folder)",
        )
    parquet = path.suffix.lower() in (".parquet", ".pq")
    if not parquet and id_column is not None:
        _check_separator(path, sep, id_column)
    try:
        if parquet:
            df = pd.read_parquet(path)
            df = df.astype(object).where(df.notna(), np.nan)
            df = df.map(lambda v: v if isinstance(v, str) or v is np.nan else str(v))
        else:
            df = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=False,
            )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(
            f"The manifest cannot be parsed ({exc}).",
            file=path,
            fix="save it as UTF-8 CSV with a header row, or as Parquet",
        ) from None
    if len(df.columns) == 0 or len(df) == 0:
        raise DataError(
            "The manifest has no cases (no data rows).",
            file=path,
            fix="add one row per case below the header row",
        )
    # Whitespace-only cells are as empty as empty ones; stripping them is the only change made.
    df = df.map(lambda v: np.nan if isinstance(v, str) and not v.strip() else v)
    df.columns = [str(c) for c in df.columns]
    return df


def _check_separator(path: Path, sep: str, id_column: str) -> None:
    """Name the separator a CSV header really uses when it is not ``sep`` (a manifest saved by a
    spreadsheet with ';' would otherwise be one column, reported as 'no column case_id')."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            line = fh.readline().rstrip("\r\n")
    except OSError:
        return  # reading the whole file reports it
    if id_column in _fields(line, sep):
        return
    for other, name in SEPARATORS.items():
        if other != sep and id_column in _fields(line, other):
            shown = line if len(line) <= 80 else line[:77] + "..."
            yaml_sep = '"\\t"' if other == "\t" else f'"{other}"'
            raise DataError(
                f"The manifest's header looks {name}-separated ('{shown}'), but it is read with "
                f"{SEPARATORS.get(sep, repr(sep))} (data.sep), so there is no column '{id_column}'.",
                file=path,
                column=id_column,
                fix=f"set `sep: {yaml_sep}` under `data:` in the config (data.sep), or save the manifest "
                f"{SEPARATORS.get(sep, repr(sep))}-separated",
            )


def _fields(line: str, sep: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=sep), [])]


def check_manifest(
    df: pd.DataFrame,
    cfg: Config,
    path: Path,
    *,
    need_labels: bool = True,
    errors: list[DataError] | None = None,
) -> None:
    """Structural checks that need no file I/O: columns, ids, empty modalities, labels present.

    Every problem found is appended to ``errors``; without a list they are raised as one error
    (the first, with a count of the others). A column that is missing is reported once, and its
    values are not checked.
    """
    found: list[DataError] = [] if errors is None else errors
    before = len(found)
    id_col = cfg.data.id_column
    named = [(id_col, "data.id_column")]
    if cfg.data.patient_column:
        named.append((cfg.data.patient_column, "data.patient_column"))
    if cfg.data.split.column:
        named.append((cfg.data.split.column, "data.split.column"))
    named += [(c, "data.metadata_columns") for c in cfg.data.metadata_columns]
    for m in cfg.modalities:
        named += [(c, f"modalities[{m.name}]") for c in _columns(m)]
    label_cols = [
        (c, t) for t in cfg.tasks for c in ([t.label] if isinstance(t.label, str) else t.label)
    ]
    if need_labels:
        named += [(c, f"tasks[{t.name}].label") for c, t in label_cols]
        # Subgroups are scored where labels are: a manifest for `predict` need not have them.
        named += [(c, "fairness.columns") for c in cfg.fairness.manifest_columns()]
    for col, where in _first_naming(named):
        if col not in df.columns:
            found.append(
                DataError(
                    f"The manifest has no column '{col}' (named by {where}).{did_you_mean(col, df.columns)}",
                    column=col,
                    file=path,
                    fix=f"rename the column or change {where}; columns are: {', '.join(df.columns)}",
                )
            )
    if id_col in df.columns:
        _check_ids(df[id_col], path, found)
    ids = df[id_col] if id_col in df.columns else None
    for m in cfg.modalities:
        cols = [c for c in _columns(m) if c in df.columns]
        if cols and df[cols].isna().all(axis=None):
            found.append(
                DataError(
                    f"Modality '{m.name}' is empty for every case.",
                    file=path,
                    column=",".join(cols),
                    fix="fill the column(s) or remove the modality from the config",
                )
            )
    # Cases with none of the configured modalities are kept on purpose: a single-modality
    # baseline must be scored on the same cases as the fused model, and for such a case it can
    # only predict from what it learned about absence (the prior). `validate` reports how many.
    if need_labels:
        from fusiondx.tasks import config_type

        for c, t in label_cols:
            if c not in df.columns or config_type(t).may_be_empty:
                continue  # an empty cell means no lesion / no reference / not measured
            for i in np.flatnonzero(df[c].isna().to_numpy()):
                found.append(
                    DataError(
                        "The label is empty.",
                        row=line_of(int(i)),
                        column=c,
                        case_id=case_of(ids, int(i)),
                        fix="fill the label, or drop unlabelled cases (use `fusiondx predict` for them)",
                    )
                )
    if errors is None and len(found) > before:
        raise summarise(found, path)


def some_cases(cases: Sequence[str], shown: int = 5) -> str:
    """A few case ids (or short case descriptions) for a one-line message: 'a, b, c, ...'."""
    return ", ".join(cases[:shown]) + (", ..." if len(cases) > shown else "")


def _columns(m: object) -> list[str]:
    return list(m.columns) if isinstance(m, TabularModality) else [m.column]  # type: ignore[attr-defined]


def _first_naming(named: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each column once, with the first config key that names it."""
    seen: dict[str, str] = {}
    for col, where in named:
        seen.setdefault(col, where)
    return list(seen.items())


def _check_ids(ids: pd.Series, path: Path, found: list[DataError]) -> None:
    col = str(ids.name)
    for pos in np.flatnonzero(ids.isna().to_numpy()):
        found.append(
            DataError(
                "A case has an empty id.",
                file=path,
                row=line_of(int(pos)),
                column=col,
                fix="give every row a unique case id",
            )
        )
    dup = ids[ids.duplicated(keep=False) & ids.notna()]
    n_repeated = dup.nunique()
    for value in dict.fromkeys(dup):
        lines = [line_of(int(i)) for i in np.flatnonzero((ids == value).to_numpy())]
        found.append(
            DataError(
                f"Case ids must be unique, but '{value}' appears on lines {lines}"
                f" ({n_repeated} repeated id(s) in all).",
                file=path,
                row=lines[0],
                column=col,
                case_id=str(value),
                fix="make the ids unique (e.g. append a visit number), or remove the duplicate rows",
            )
        )


def modality_present(df: pd.DataFrame, m: object) -> np.ndarray:
    """(N,) bool: True where the case has this modality (any of a tabular block's cells)."""
    if isinstance(m, TabularModality):
        return df[m.columns].notna().any(axis=1).to_numpy()
    return df[m.column].notna().to_numpy()  # type: ignore[attr-defined]


def resolve_path(value: str, root: Path, *, column: str, case_id: str, row: int) -> Path:
    """Resolve a manifest path against the data root, refusing paths that leave it."""
    p = Path(value.strip()).expanduser()
    full = (p if p.is_absolute() else root / p).resolve()
    root_r = root.resolve()
    if not full.is_relative_to(root_r):
        raise DataError(
            f"The path '{value}' points outside the data root '{root_r}'.",
            case_id=case_id,
            row=row,
            column=column,
            fix="move the file under the data root, or set data.root to a folder containing it",
        )
    return full
