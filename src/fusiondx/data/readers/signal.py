"""Read physiological signals (ECG, EEG, ...) and turn them into fixed-length inputs.

:func:`read_signal` opens a WFDB record, a CSV file or a ``.npy`` array and returns a
:class:`SignalRecord` with a float32 ``(leads, samples)`` array in physical units.
:func:`preprocess_signal` selects leads, fills gaps, resamples, crops or pads and normalises it.

Missing samples (NaN, which WFDB uses for samples marked invalid) are kept by the reader and
filled by linear interpolation in :func:`preprocess_signal`; a lead with no valid sample at all
is an error.
"""

from __future__ import annotations

import contextlib
import csv
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from fusiondx.data.readers._common import load_numeric_npy
from fusiondx.data.readers._common import one_line as _msg
from fusiondx.errors import ConfigError, DataError, did_you_mean

__all__ = [
    "SIGNAL_SUFFIXES",
    "SignalRecord",
    "lead_count",
    "preprocess_signal",
    "read_signal",
    "record_files",
]

#: Suffixes :func:`read_signal` understands (plus WFDB record names without a suffix).
SIGNAL_SUFFIXES: tuple[str, ...] = (".hea", ".dat", ".mat", ".csv", ".npy")

# Column names in a CSV that hold time stamps rather than a lead.
_TIME_COLUMNS = frozenset({"time", "t", "time_s"})
_NORMALIZE_CHOICES = ("per_lead", "none")
_CROP_CHOICES = ("start", "center")
_SOURCE_RATE_FIX = (
    "set preprocessing.source_rate to the sampling rate of the files (in Hz), or set "
    "preprocessing.rate to null to use the samples as they are"
)


@dataclass
class SignalRecord:
    """One multi-lead signal as read from disk.

    Attributes:
        array: float32 ``(leads, samples)`` in physical units; NaN marks missing samples.
        rate: sampling rate in Hz, or ``None`` when the file does not say and none was given.
        lead_names: one name per lead (for ``.npy`` files, ``"0"``, ``"1"``, ...).
        path: the file the signal came from, used to name it in later errors.
    """

    array: np.ndarray
    rate: float | None
    lead_names: list[str] = field(default_factory=list)
    path: Path | None = None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_signal(path: Path, *, source_rate: float | None = None, root: Path | None = None) -> SignalRecord:
    """Read one signal file into a :class:`SignalRecord`.

    Accepted forms:

    - WFDB: the ``.hea`` header, the record path without suffix, or a ``.dat``/``.mat`` data
      file that has a ``.hea`` next to it. Values are physical (``p_signal``), the rate is the
      header's ``fs`` (``source_rate`` is ignored: the header is authoritative) and lead names
      come from ``sig_name``.
    - ``.csv``: a header row of lead names, then one column per lead. A column named ``time``,
      ``t`` or ``time_s`` is dropped. Empty cells and ``nan`` become NaN.
    - ``.npy``: a 2D ``(leads, samples)`` array, or a 1D array for one lead.

    For CSV and ``.npy`` the rate is ``source_rate``; when that is ``None`` the record's rate is
    unknown and :func:`preprocess_signal` raises if it has to resample.

    Args:
        path: the signal file or WFDB record path.
        source_rate: sampling rate in Hz of CSV/``.npy`` files.
        root: the data root. When given, every file the record pulls in (a WFDB header found
            next to a record name, the data files and segments its header names) must lie under
            it once symlinks are resolved, like the manifest's own paths.

    Returns:
        The signal as float32 ``(leads, samples)`` with its rate and lead names.

    Raises:
        DataError: the file (or a WFDB data file named by the header) is missing, unreadable,
            corrupt or of an unsupported type or shape.
    """
    path = Path(path)
    if source_rate is not None and not (source_rate > 0 and math.isfinite(source_rate)):
        raise ConfigError(
            f"source_rate must be a positive number of Hz, got {source_rate}",
            fix="set preprocessing.source_rate to the files' sampling rate, e.g. 500",
        )
    suffix = path.suffix.lower()

    # A WFDB record is named without suffix; names may themselves contain dots ("rec.1").
    if Path(str(path) + ".hea").is_file():
        return _read_wfdb(Path(str(path) + ".hea"), root)
    if suffix in (".hea", ".dat", ".mat"):
        header = path.with_suffix(".hea")
        if suffix != ".hea" and not header.is_file():
            if not path.exists():
                raise _not_found(path)
            raise DataError(
                f"a {suffix} signal file is read through its WFDB header, but "
                f"'{header.name}' is not next to it",
                fix="put the record's .hea header beside the data file, or point the manifest "
                "at the .hea file",
                file=path,
            )
        if not header.is_file():
            raise _not_found(path)
        return _read_wfdb(header, root)

    if not path.exists():
        raise _not_found(path)
    if path.is_dir():
        raise DataError(
            "the path is a folder, not a signal file",
            fix="point the manifest at one .hea, .csv or .npy file",
            file=path,
        )
    if suffix == ".csv":
        array, names = _read_csv(path)
    elif suffix == ".npy":
        array, names = _read_npy(path)
    else:
        raise DataError(
            f"unsupported signal file type: {suffix or 'no suffix'}",
            fix="use a WFDB record (.hea), .csv or .npy file; a WFDB record without suffix "
            "needs its .hea header next to it",
            file=path,
        )
    rate = float(source_rate) if source_rate is not None else None
    return SignalRecord(array=array, rate=rate, lead_names=names, path=path)


def _not_found(path: Path) -> DataError:
    return DataError(
        "file not found",
        fix="check the path in the manifest and the data root it is resolved against (a WFDB "
        "record needs its .hea header and data files)",
        file=path,
    )


def _wfdb_header(path: Path) -> Path | None:
    """The header of the WFDB record ``path`` stands for (as :func:`read_signal` finds it), or
    None when ``path`` is not a WFDB record."""
    if Path(str(path) + ".hea").is_file():
        return Path(str(path) + ".hea")
    if path.suffix.lower() in (".hea", ".dat", ".mat"):
        return path.with_suffix(".hea")
    return None


def _header_lines(header: Path) -> list[list[str]]:
    """The fields of a WFDB header's lines, comments left out (no wfdb import: headers are read
    by the thousand to key the cache and count leads, and wfdb.rdheader takes milliseconds)."""
    text = header.read_text(encoding="latin-1")
    return [line.split("#", 1)[0].split() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def record_files(path: Path) -> list[Path]:
    """Every file reading ``path`` opens: the file itself, or a WFDB record's header followed by
    the data files and segment headers it names. Unparseable headers give the header alone
    (reading the record reports them)."""
    header = _wfdb_header(path)
    if header is None or not header.is_file():
        return [path]
    out = [header]
    try:
        lines = _header_lines(header)
        if "/" in lines[0][0]:  # multi-segment: 'name/segments ...', then '<segment> <samples>'
            n_seg = int(lines[0][0].split("/")[1])
            out += [header.parent / f"{seg[0]}.hea" for seg in lines[1:1 + n_seg] if seg[0] != "~"]
        else:
            n_sig = int(lines[0][1]) if len(lines[0]) > 1 else 0
            out += [header.parent / sig[0] for sig in lines[1:1 + n_sig]]
    except (OSError, ValueError, IndexError):
        return [header]
    return list(dict.fromkeys(out))


def lead_count(path: Path, *, source_rate: float | None = None) -> int:
    """The number of leads of a record, read from its WFDB header, .npy header or CSV header
    row without decoding the samples where possible.

    Raises:
        DataError: as :func:`read_signal`, for a file whose lead count cannot be read cheaply.
    """
    header = _wfdb_header(path)
    try:
        if header is not None and header.is_file():
            return int(_header_lines(header)[0][1])
        if path.suffix.lower() == ".npy" and path.is_file():
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            if (len(shape) == 1 or (len(shape) == 2 and shape[0] <= shape[1])) and 0 not in shape:
                return 1 if len(shape) == 1 else int(shape[0])
    except (OSError, ValueError, IndexError):
        pass  # read it whole below, which names the problem
    return int(read_signal(path, source_rate=source_rate).array.shape[0])


@contextlib.contextmanager
def _quiet_wfdb() -> Iterator[None]:
    """Silence deprecation warnings wfdb triggers inside pandas on every read.

    They concern wfdb's own code, repeat for every file and would bury the user's warnings.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"wfdb(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"wfdb(\.|$)")
        yield


def _confine(path: Path, root: Path | None, *, what: str, file: Path) -> None:
    """Refuse a file that lies outside the data root once symlinks are resolved."""
    if root is None:
        return
    full, root_r = path.resolve(), Path(root).resolve()
    if not full.is_relative_to(root_r):
        raise DataError(
            f"The {what} points outside the data root '{root_r}' (it resolves to '{full}').",
            file=file,
            fix="move the file under the data root, or set data.root to a folder containing it")


def _read_wfdb(header: Path, root: Path | None = None) -> SignalRecord:
    with _quiet_wfdb():
        import wfdb

    _confine(header, root, what=f"WFDB header '{header.name}'", file=header)
    record_name = str(header.with_suffix(""))
    try:
        with _quiet_wfdb():
            hdr = wfdb.rdheader(record_name)
    except Exception as exc:  # wfdb raises ValueError/HeaderSyntaxError/... for bad headers
        raise DataError(
            f"the WFDB header cannot be parsed (wfdb: {_msg(exc)})",
            fix="check the .hea file against the WFDB header format, or re-download the record",
            file=header,
        ) from exc

    # The header names the files wfdb opens next: each must stay under the data root too (a
    # symlinked .dat would otherwise read data from anywhere).
    for name in dict.fromkeys(getattr(hdr, "file_name", None) or []):
        if name:
            _confine(header.parent / name, root, what=f"WFDB data file '{name}' named in the header",
                     file=header)
    for seg in dict.fromkeys(getattr(hdr, "seg_name", None) or []):
        if seg and seg != "~":
            _confine(header.parent / f"{seg}.hea", root, what=f"WFDB segment '{seg}' named in the header",
                     file=header)
            for name in record_files(header.parent / f"{seg}.hea")[1:]:
                _confine(name, root, what=f"WFDB data file '{name.name}' of segment '{seg}'", file=header)

    # Check data files up front: wfdb's own error for a missing .dat is a bare FileNotFoundError.
    for name in dict.fromkeys(getattr(hdr, "file_name", None) or []):
        if name and not (header.parent / name).is_file():
            raise DataError(
                f"the WFDB data file '{name}' named in the header is missing",
                fix=f"put '{name}' next to the header, or re-download the complete record",
                file=header,
            )

    try:
        with _quiet_wfdb():
            rec = wfdb.rdrecord(record_name, physical=True)
    except Exception as exc:  # truncated/corrupt .dat, unsupported formats, ...
        raise DataError(
            f"the WFDB record cannot be read (wfdb: {_msg(exc)})",
            fix="check that the record's data files are complete and match the header; "
            "re-download the record",
            file=header,
        ) from exc

    p_signal = rec.p_signal
    if p_signal is None or p_signal.size == 0 or p_signal.ndim != 2:
        raise DataError(
            "the WFDB record has no signal samples",
            fix="check the record; it should hold at least one lead with samples",
            file=header,
        )
    names = [str(n) for n in (rec.sig_name or [])]
    if len(names) != p_signal.shape[1]:
        names = [str(i) for i in range(p_signal.shape[1])]
    rate = float(rec.fs) if rec.fs else None
    return SignalRecord(
        array=np.ascontiguousarray(p_signal.T, dtype=np.float32),
        rate=rate,
        lead_names=names,
        path=header,
    )


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        # utf-8-sig drops the byte-order mark spreadsheet programs often write.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        with path.open(newline="", encoding="latin-1") as fh:
            text = fh.read()
    except OSError as exc:
        raise DataError(
            f"the CSV file cannot be opened ({_msg(exc)})",
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
    first = lines[0]
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
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


def _read_npy(path: Path) -> tuple[np.ndarray, list[str]]:
    data = load_numeric_npy(path, what="signal", fix_shape="of shape (leads, samples)")
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.size == 0:
        raise DataError(
            f"the .npy signal has shape {data.shape}; expected (leads, samples) or (samples,)",
            fix="save one 2D (leads, samples) array per file",
            file=path,
        )
    if data.shape[0] > data.shape[1]:
        # More leads than samples is never a real recording: the array is (samples, leads).
        raise DataError(
            f"the .npy signal has shape {data.shape}, i.e. more leads than samples; FusionDx "
            "expects (leads, samples)",
            fix="save the array transposed (numpy.save(path, array.T))",
            file=path,
        )
    return np.ascontiguousarray(data, dtype=np.float32), [str(i) for i in range(data.shape[0])]


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def preprocess_signal(
    rec: SignalRecord,
    *,
    rate: float | None,
    length: int,
    leads: int | None = None,
    lead_names: Sequence[str] | None = None,
    normalize: str = "per_lead",
    crop: str = "start",
    min_fraction: float = 0.5,
) -> np.ndarray:
    """Turn one signal into a fixed ``(leads, length)`` array.

    Steps, in order:

    1. Select leads by name (exact match first, then case-insensitive) if ``lead_names`` given.
    2. Check the lead count if ``leads`` is given.
    3. Reject infinite values; fill NaN samples by linear interpolation along time from the
       nearest valid samples on each side (the first/last valid value is held at the edges).
       A lead with no valid sample is an error.
    4. Resample to ``rate`` with :func:`scipy.signal.resample_poly` (polyphase, anti-aliased)
       when it differs from the record's rate.
    5. Reject signals shorter than ``min_fraction * length`` samples.
    6. Crop to ``length`` (from the start, or centred), normalise, then zero-pad at the end.
       Padding comes after normalisation so the padded zeros do not bias the statistics, and
       with ``"per_lead"`` zero is each lead's mean.

    Args:
        rec: the signal as read by :func:`read_signal`.
        rate: target sampling rate in Hz, or ``None`` to keep the samples as they are.
        length: output length in samples (at ``rate``).
        leads: expected number of leads (after selection), or ``None`` not to check.
        lead_names: leads to keep, in this order, or ``None`` for all.
        normalize: ``"per_lead"`` (z-score each lead over time; a flat lead gives zeros) or
            ``"none"``.
        crop: ``"start"`` or ``"center"``, used when the signal is longer than ``length``.
        min_fraction: the shortest accepted signal, as a fraction of ``length``.

    Returns:
        float32 array of shape ``(leads, length)``.

    Raises:
        DataError: the signal lacks a requested lead, has the wrong number of leads, has an
            unknown rate when resampling is needed, is too short, or has invalid values.
        ConfigError: an option value is invalid.
    """
    path = rec.path
    _check_options(
        rate=rate, length=length, normalize=normalize, crop=crop, min_fraction=min_fraction
    )
    x = np.asarray(rec.array, dtype=np.float64)
    names = list(rec.lead_names) if rec.lead_names else [str(i) for i in range(x.shape[0])]
    if x.ndim != 2:
        raise DataError(
            f"the signal has shape {x.shape}; expected (leads, samples)",
            fix="store one (leads, samples) signal per file",
            file=path,
        )

    # 1. Lead selection.
    if lead_names is not None:
        idx = [_find_lead(str(n), names, path) for n in lead_names]
        x = x[idx]
        names = [names[i] for i in idx]

    # 2. Lead count.
    if leads is not None and x.shape[0] != leads:
        raise DataError(
            f"the signal has {x.shape[0]} lead(s) ({', '.join(names)}) but the config expects "
            f"{leads}",
            fix="set the modality's leads to match the files, choose leads with lead_names, or "
            "remove the cases with other lead sets",
            file=path,
        )

    # 3. Invalid values.
    x = _fill_gaps(x, names, path)

    # 4. Resampling.
    source = rec.rate
    if rate is not None:
        if source is None:
            raise DataError(
                f"the signal's sampling rate is unknown, so it cannot be resampled to {rate:g} Hz",
                fix=_SOURCE_RATE_FIX,
                file=path,
            )
        if not math.isclose(source, rate, rel_tol=1e-9):
            ratio = Fraction(float(rate) / float(source)).limit_denominator(1000)
            up, down = ratio.numerator, ratio.denominator
            from scipy.signal import resample_poly

            # padtype="line": extend the edges along a fitted line instead of with zeros, so a
            # baseline offset does not create a dip at both ends.
            x = resample_poly(x, up, down, axis=1, padtype="line")

    # 5. Too short?
    n = x.shape[1]
    eff_rate = rate if rate is not None else source
    need = min_fraction * length
    if n < need:
        if eff_rate:
            what = (
                f"the signal is {n / eff_rate:.1f} s long but needs at least "
                f"{need / eff_rate:.1f} s (length {length} samples at {eff_rate:g} Hz, "
                f"min_fraction {min_fraction:g})"
            )
        else:
            what = (
                f"the signal has {n} samples but needs at least {math.ceil(need)} (length "
                f"{length}, min_fraction {min_fraction:g})"
            )
        raise DataError(
            what,
            fix="remove this case from the manifest, lower preprocessing.min_fraction, or "
            "shorten the modality's length (shorter signals are zero-padded)",
            file=path,
        )

    # 6. Crop, normalise, pad.
    if n > length:
        start = 0 if crop == "start" else (n - length) // 2
        x = x[:, start : start + length]
    if normalize == "per_lead":
        mean = x.mean(axis=1, keepdims=True)
        std = x.std(axis=1, keepdims=True)
        flat = std < 1e-8 * np.maximum(1.0, np.abs(mean))
        # A flat lead (e.g. disconnected electrode) carries no shape: zeros, not 0/0 = NaN.
        x = np.where(flat, 0.0, (x - mean) / np.where(flat, 1.0, std))
    if x.shape[1] < length:
        x = np.pad(x, ((0, 0), (0, length - x.shape[1])))
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_options(
    *, rate: float | None, length: int, normalize: str, crop: str, min_fraction: float
) -> None:
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise ConfigError(
            f"signal rate must be positive, got {rate}", fix="set rate in Hz, e.g. 100"
        )
    if int(length) != length or length < 1:
        raise ConfigError(
            f"signal length must be a positive whole number of samples, got {length}",
            fix="set length, e.g. 1000 for 10 s at 100 Hz",
        )
    if normalize not in _NORMALIZE_CHOICES:
        raise ConfigError(
            f"unknown signal normalisation '{normalize}'",
            fix="use one of " + ", ".join(_NORMALIZE_CHOICES),
        )
    if crop not in _CROP_CHOICES:
        raise ConfigError(
            f"unknown signal crop '{crop}'", fix="use one of " + ", ".join(_CROP_CHOICES)
        )
    if not 0.0 <= min_fraction <= 1.0:
        raise ConfigError(
            f"min_fraction must be between 0 and 1, got {min_fraction}",
            fix="set min_fraction, e.g. 0.5",
        )


def _find_lead(name: str, names: list[str], path: Path | None) -> int:
    if name in names:
        return names.index(name)
    lowered = [n.lower() for n in names]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    raise DataError(
        f"the signal has no lead '{name}'; its leads are: {', '.join(names)}."
        + did_you_mean(name, names),
        fix="correct lead_names in the config to names present in every file",
        file=path,
    )


def _fill_gaps(x: np.ndarray, names: list[str], path: Path | None) -> np.ndarray:
    """Reject inf and all-NaN leads; linearly interpolate scattered NaN samples."""
    if np.isinf(x).any():
        bad = [names[i] for i in np.flatnonzero(np.isinf(x).any(axis=1))]
        raise DataError(
            f"the signal has infinite values in lead(s) {', '.join(bad)}",
            fix="replace the infinite samples with valid values or leave them empty (NaN) so "
            "they are interpolated",
            file=path,
        )
    nan = np.isnan(x)
    if not nan.any():
        return x
    x = x.copy()
    t = np.arange(x.shape[1])
    for i in np.flatnonzero(nan.any(axis=1)):
        ok = ~nan[i]
        if not ok.any():
            raise DataError(
                f"lead '{names[i]}' has no valid samples (all NaN)",
                fix="remove the lead with lead_names, repair the recording, or remove the case",
                file=path,
            )
        x[i, ~ok] = np.interp(t[~ok], t[ok], x[i, ok])
    return x
