"""Shared machinery of the per-kind preprocessors: fit on train, then decode every case once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from fusiondx.data.manifest import resolve_path
from fusiondx.errors import ConfigError, DataError, line_of
from fusiondx.types import ModalitySpec

Arrays = dict[str, np.ndarray]


class Preprocessor:
    """Turns one modality's manifest cells into fixed-shape arrays for every case.

    ``fit`` sees only the training cases (statistics, vocabularies); ``transform`` decodes all
    requested cases once into stacked arrays (a missing case stays a zero placeholder), so that
    training epochs never re-read files. ``state()`` is JSON-able and saved with the run.
    """

    kind: ClassVar[str] = ""

    def __init__(self, cfg: Any, root: Path) -> None:
        self.cfg = cfg
        self.root = root

    @property
    def name(self) -> str:
        return str(self.cfg.name)

    def fit(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> None:
        """Learn what is needed from training cases only (default: nothing)."""

    def check(self, df: pd.DataFrame, ids: pd.Series | None, errors: list[DataError]) -> None:
        """Append every problem the manifest's cells show without reading a file (default: none)."""

    def notes(self) -> list[str]:
        """What ``fit`` noticed that is not an error but worth saying (printed by ``validate``)."""
        return []

    def found(self) -> tuple[list[int], list[str]]:
        """What the last ``transform`` found that is not an error: the positions of present
        cells that hold nothing (treated as missing, in the presence mask), and warnings for
        the user, one line each with a count and a few case ids (printed by validate and fit)."""
        return [], []

    def reset_found(self) -> None:
        """Forget what earlier transforms found: the transforms that follow (the shards of one
        decode) add up to what ``found`` says (default: nothing is kept)."""

    def input_files(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> list[Path]:
        """Every file ``transform`` would read for these cases (keys the disk cache); cells whose
        path is refused are left out, as decoding reports them (default: none)."""
        return []

    def iter_input_files(
        self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series
    ) -> Iterator[Path]:
        """``input_files`` one at a time (a large cohort's list of paths is never built)."""
        return iter(self.input_files(df, present, ids))

    def spec(self) -> ModalitySpec:
        raise NotImplementedError

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Per-case array shapes and dtypes, keyed by array name ('' for a single tensor)."""
        raise NotImplementedError

    def transform(
        self,
        df: pd.DataFrame,
        present: np.ndarray,
        ids: pd.Series,
        out: Arrays,
        errors: list[DataError],
        advance: Callable[[int], None],
    ) -> None:
        """Fill ``out`` (already allocated, zeros) for the present cases; append failures to errors.

        ``out`` is indexed by row of ``df``; a decode in shards calls this once per shard with
        ``present`` limited to the shard's rows, after one ``reset_found``."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``fit`` learned."""

    # Federated statistics (fusiondx.federated): each site sends ``partial`` of its own training
    # cases (counts, sums, token counts, never a row); ``merge`` of every site's part leaves the
    # preprocessor as ``fit`` on the union of those cases would (up to float rounding).
    def partial(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> dict[str, Any]:
        """This site's share of what ``fit`` learns, as JSON-able aggregates (default: none, for
        a preprocessor that learns nothing)."""
        self._check_federable()
        return {}

    def merge(self, parts: list[dict[str, Any]]) -> None:
        """Set the state from every site's ``partial`` (default: nothing to learn)."""
        self._check_federable()

    def _check_federable(self) -> None:
        if type(self).fit is not Preprocessor.fit:
            raise ConfigError(
                f"Modality '{self.name}' ({self.kind}) learns its preprocessing from the training "
                "cases, and its preprocessor has no federated statistics (partial/merge).",
                fix="implement partial() and merge() for it, or train this modality centrally",
            )


class FilePreprocessor(Preprocessor):
    """A modality whose cell is a path to one file per case (images, signals)."""

    def load_file(self, path: Path) -> np.ndarray:
        raise NotImplementedError

    def load_case(self, path: Path, case_id: str) -> np.ndarray:
        """One case's array; subclasses that report findings per case override this."""
        return self.load_file(path)

    def files_of(self, path: Path) -> list[Path]:
        """Every file reading ``path`` opens (a WFDB record: its header and data files)."""
        return [path]

    def input_files(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> list[Path]:
        return list(self.iter_input_files(df, present, ids))

    def iter_input_files(
        self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series
    ) -> Iterator[Path]:
        return (f for _, path in self.iter_paths(df, present, ids, []) for f in self.files_of(path))

    def iter_paths(
        self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series, errors: list[DataError]
    ) -> Iterator[tuple[int, Path]]:
        col = self.cfg.column
        for pos in np.flatnonzero(present):
            try:
                yield (
                    int(pos),
                    resolve_path(
                        str(df[col].iloc[pos]),
                        self.root,
                        column=col,
                        case_id=str(ids.iloc[pos]),
                        row=line_of(int(pos)),
                    ),
                )
            except DataError as err:
                errors.append(err)

    def transform(
        self,
        df: pd.DataFrame,
        present: np.ndarray,
        ids: pd.Series,
        out: Arrays,
        errors: list[DataError],
        advance: Callable[[int], None],
    ) -> None:
        col = self.cfg.column
        for pos, path in self.iter_paths(df, present, ids, errors):
            try:
                out[""][pos] = self.load_case(path, str(ids.iloc[pos]))
            except DataError as err:
                errors.append(
                    err.at(case_id=str(ids.iloc[pos]), row=line_of(pos), column=col, file=path)
                )
            advance(1)
