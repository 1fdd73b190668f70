"""Signal readers, one per format (WFDB, EDF/BDF, CSV, ``.npy``).

:func:`read_signal` picks the reader from the registry and returns a :class:`SignalRecord`
with a float32 ``(leads, samples)`` array in physical units, the sampling rate when the file
states it (else ``source_rate``) and the lead names. Missing samples (NaN, which WFDB uses for
samples marked invalid) are kept; the signal preprocessor fills them.
"""

from __future__ import annotations

import math
from pathlib import Path

from fusiondx.data.readers._base import SignalRecord
from fusiondx.data.readers._lookup import confine_files, find_reader
from fusiondx.errors import ConfigError, DataError

__all__ = ["SignalRecord", "lead_count", "read_signal", "record_files"]


def read_signal(
    path: Path,
    *,
    source_rate: float | None = None,
    root: Path | None = None,
    lead_names: list[str] | None = None,
) -> SignalRecord:
    """Read one signal file into a :class:`SignalRecord`.

    Accepted forms (see each reader's docstring): a WFDB record (the ``.hea`` header, the record
    path without suffix, or a ``.dat``/``.mat`` data file with a ``.hea`` next to it), an EDF or
    BDF file (EDF+/BDF+ annotation channels skipped), a ``.csv`` with a header row of lead names,
    a ``.npy`` ``(leads, samples)`` array.

    Args:
        path: the signal file or WFDB record path.
        source_rate: sampling rate in Hz of CSV/``.npy`` files; formats whose header states the
            rate ignore it (the header is authoritative).
        root: the data root. When given, every file the record pulls in (a WFDB header found
            next to a record name, the data files and segments its header names) must lie under
            it once symlinks are resolved, like the manifest's own paths.
        lead_names: the leads the config selects; the EDF reader uses it to keep the channels of
            one sampling rate when a file mixes rates.

    Raises:
        DataError: the file (or a file the record names) is missing, unreadable, corrupt or of
            an unsupported type or shape.
    """
    path = Path(path)
    if source_rate is not None and not (source_rate > 0 and math.isfinite(source_rate)):
        raise ConfigError(
            f"source_rate must be a positive number of Hz, got {source_rate}",
            fix="set preprocessing.source_rate to the files' sampling rate, e.g. 500",
        )
    reader = find_reader(path, "signal")
    confine_files(reader, path, root)
    rec: SignalRecord = reader.read(path, source_rate=source_rate, root=root, lead_names=lead_names)
    return rec


def record_files(path: Path) -> list[Path]:
    """Every file reading ``path`` opens: the file itself, or a WFDB record's header followed by
    the data files and segments it names; ``[path]`` when no reader takes it."""
    try:
        return list(find_reader(Path(path), "signal").files(Path(path)))
    except DataError:
        return [Path(path)]


def lead_count(path: Path, *, source_rate: float | None = None) -> int:
    """The number of leads of a record, read from its header (WFDB, EDF, ``.npy``) without
    decoding the samples where the format allows.

    Raises:
        DataError: as :func:`read_signal`, for a file whose lead count cannot be read cheaply.
    """
    return int(find_reader(Path(path), "signal").count_leads(Path(path), source_rate=source_rate))
