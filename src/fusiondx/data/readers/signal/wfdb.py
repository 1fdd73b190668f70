"""WFDB records (PhysioNet: PTB-XL, MIT-BIH, ...) through the wfdb package."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import Example, SignalReader, SignalRecord
from fusiondx.data.readers._common import confine, one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader

_SUFFIXES = (".hea", ".dat", ".mat")


def header_of(path: Path) -> Path | None:
    """The header of the WFDB record ``path`` stands for, or None when it is not one."""
    if Path(str(path) + ".hea").is_file():  # a record named without suffix ("rec.1" too)
        return Path(str(path) + ".hea")
    if path.suffix.lower() in _SUFFIXES:
        return path.with_suffix(".hea")
    return None


def _record_name(path: Path) -> bool:
    return Path(str(path) + ".hea").is_file()


def _header_lines(header: Path) -> list[list[str]]:
    """The fields of a WFDB header's lines, comments left out (no wfdb import: headers are read
    by the thousand to key the cache and count leads, and wfdb.rdheader takes milliseconds)."""
    text = header.read_text(encoding="latin-1")
    return [
        line.split("#", 1)[0].split() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


def _named_files(header: Path) -> list[Path]:
    """The data files and segment headers a header names (segments' own data files too)."""
    lines = _header_lines(header)
    if "/" in lines[0][0]:  # multi-segment: 'name/segments ...', then '<segment> <samples>'
        n_seg = int(lines[0][0].split("/")[1])
        out = []
        for seg in lines[1 : 1 + n_seg]:
            if seg[0] != "~":
                seg_header = header.parent / f"{seg[0]}.hea"
                out.append(seg_header)
                with contextlib.suppress(OSError, ValueError, IndexError):
                    out += _named_files(seg_header)
        return out
    n_sig = int(lines[0][1]) if len(lines[0]) > 1 else 0
    return [header.parent / sig[0] for sig in lines[1 : 1 + n_sig]]


@contextlib.contextmanager
def _quiet_wfdb() -> Iterator[None]:
    """Silence deprecation warnings wfdb triggers inside pandas on every read.

    They concern wfdb's own code, repeat for every file and would bury the user's warnings.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"wfdb(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"wfdb(\.|$)")
        yield


@register_reader(
    "wfdb",
    kind="signal",
    suffixes=_SUFFIXES,
    claims=_record_name,
    hint="a WFDB record named without suffix needs its .hea header next to it",
    companions="a WFDB record needs its .hea header and data files",
)
class WfdbReader(SignalReader):
    """A WFDB record (PhysioNet), named by its header, its data file or its name without suffix.

    The manifest may name the ``.hea`` header, the record name without suffix, or a
    ``.dat``/``.mat`` with its ``.hea`` beside it. Values are physical (``p_signal``), the rate is
    the header's ``fs`` and lead names come from ``sig_name``.
    """

    def files(self, path: Path) -> list[Path]:
        header = header_of(path)
        if header is None or not header.is_file():
            return [path]
        try:
            return list(dict.fromkeys([header, *_named_files(header)]))
        except (OSError, ValueError, IndexError):
            return [header]  # unparseable: reading the record reports it

    def count_leads(self, path: Path, *, source_rate: float | None = None) -> int:
        header = header_of(path)
        if header is not None and header.is_file():
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(_header_lines(header)[0][1])
        return super().count_leads(path, source_rate=source_rate)  # reading names the problem

    def read(
        self,
        path: Path,
        *,
        source_rate: float | None = None,
        root: Path | None = None,
        lead_names: list[str] | None = None,
    ) -> SignalRecord:
        header = header_of(path) or path
        if not header.is_file():
            raise DataError(
                f"a {path.suffix.lower()} signal file is read through its WFDB header, but "
                f"'{header.name}' is not next to it",
                fix="put the record's .hea header beside the data file, or point the manifest "
                "at the .hea file",
                file=path,
            )
        return _read_record(header, root)

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        digital = rng.integers(-3000, 3000, (200, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import wfdb

            wfdb.wrsamp(
                "rec",
                fs=100,
                units=["mV", "mV"],
                sig_name=["I", "II"],
                d_signal=digital,
                fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0],
                baseline=[0, 0],
                write_dir=str(folder),
            )
        return Example(
            folder / "rec.hea",
            (digital.T / 1000.0).astype(np.float32),
            damage=folder / "rec.dat",
            atol=1e-6,
            rate=100.0,
            lead_names=["I", "II"],
        )


def _read_record(header: Path, root: Path | None) -> SignalRecord:
    with _quiet_wfdb():
        import wfdb

    confine(header, root, what=f"WFDB header '{header.name}'", file=header)
    record_name = str(header.with_suffix(""))
    # The header names the files wfdb opens next: each must stay under the data root too (a
    # symlinked .dat would otherwise read data from anywhere). The quick parse names them before
    # anything is opened, without a second wfdb.rdheader (tens of ms each, the largest cost of
    # decoding an ECG); wfdb's own parse is checked against it after the read.
    try:
        lines = _header_lines(header)
        named = _named_files(header)
    except (OSError, ValueError, IndexError):
        named = None  # unparseable: wfdb's parse below says why
    if named is not None:
        for name in named:
            confine(name, root, what=_what(name, header), file=header)
        # wfdb's own error for a missing .dat is a bare FileNotFoundError.
        if "/" not in lines[0][0]:
            for name in dict.fromkeys(named):
                if not name.is_file():
                    raise DataError(
                        f"the WFDB data file '{name.name}' named in the header is missing",
                        fix=f"put '{name.name}' next to the header, or re-download the complete "
                        "record",
                        file=header,
                    )
    fast = _format16(header) if named is not None else None
    if fast is not None:
        return fast
    try:
        with _quiet_wfdb():
            rec = wfdb.rdrecord(record_name, physical=True)
    except Exception as exc:  # a bad header, truncated/corrupt .dat, unsupported formats, ...
        raise _unreadable(header, exc) from exc
    # A file wfdb read that the quick parse did not name is checked now: what it read is never
    # used from outside the data root.
    for name in dict.fromkeys(getattr(rec, "file_name", None) or []):
        if name and (named is None or header.parent / name not in named):
            confine(
                header.parent / name, root, what=_what(header.parent / name, header), file=header
            )

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
    return SignalRecord(
        array=np.ascontiguousarray(p_signal.T, dtype=np.float32),
        rate=float(rec.fs) if rec.fs else None,
        lead_names=names,
        path=header,
    )


def _format16(header: Path) -> SignalRecord | None:
    """The record read without wfdb when it is the plainest WFDB layout, else None (wfdb reads
    it): one segment, every signal in format 16 (little-endian int16) in one data file, one
    sample per frame, no skew or byte offset, a length in the header and a data file at least
    that long. PTB-XL and the built-in cohort are written so.

    Why: ``wfdb.rdrecord`` parses the header through pandas lookups per field and lead, about
    1 ms for 3 leads (3.5 for 12), ten times the read itself; the served model decodes an ECG
    per request. The lines are matched with wfdb's own patterns (``wfdb.io.header``) and the
    values converted as ``rdrecord(physical=True)`` does (read defaults: 250 Hz, gain 200, a
    gain of 0 meaning 200, baseline from ADC zero else 0; -32768 is a missing sample, NaN);
    the tests hold the two equal.
    """
    from wfdb.io.header import rx_record, rx_signal

    text = header.read_text(encoding="latin-1")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    rec = rx_record.match(lines[0]) if lines else None
    if rec is None or rec["n_seg"] or not rec["sig_len"] or not rec["n_sig"]:
        return None
    n_sig, sig_len = int(rec["n_sig"]), int(rec["sig_len"])
    if n_sig < 1 or len(lines) < 1 + n_sig:
        return None
    gains, baselines, names, files = [], [], [], set()
    for line in lines[1 : 1 + n_sig]:
        sig = rx_signal.match(line)
        if (
            sig is None
            or sig["fmt"] != "16"
            or sig["samps_per_frame"] not in ("", "1")
            or sig["skew"] not in ("", "0")
            or sig["byte_offset"] not in ("", "0")
            or sig["file_name"].startswith("~")
        ):
            return None
        try:
            gain = float(sig["adc_gain"]) if sig["adc_gain"] else 200.0
            zero = sig["adc_zero"]
            base = int(sig["baseline"]) if sig["baseline"] else int(zero) if zero else 0
        except ValueError:
            return None
        files.add(sig["file_name"])
        gains.append(gain or 200.0)
        baselines.append(base)
        names.append(sig["sig_name"])
    data = header.parent / files.pop()
    if files or not data.is_file() or data.stat().st_size < 2 * n_sig * sig_len:
        return None  # several files, or a short one: wfdb reads or reports it
    digital = np.fromfile(data, dtype="<i2", count=n_sig * sig_len).reshape(sig_len, n_sig)
    if digital.size == 0:
        return None
    physical = (digital.astype(np.float64) - np.asarray(baselines, np.float64)) / np.asarray(gains)
    physical[digital == -32768] = np.nan
    fs = float(rec["fs"]) if rec["fs"] else 250.0
    return SignalRecord(
        array=np.ascontiguousarray(physical.T, dtype=np.float32),
        rate=fs or None,
        lead_names=[str(n) for n in names],
        path=header,
    )


def _what(name: Path, header: Path) -> str:
    if name.suffix == ".hea":
        return f"WFDB segment '{name.stem}' named in the header"
    return f"WFDB data file '{name.name}' named in the header"


def _unreadable(header: Path, exc: Exception) -> DataError:
    """The error for a record wfdb cannot read: its header's fault, or its data files'."""
    import wfdb

    try:
        with _quiet_wfdb():
            hdr = wfdb.rdheader(str(header.with_suffix("")))
    except Exception as hexc:  # wfdb raises ValueError/HeaderSyntaxError/... for bad headers
        return DataError(
            f"the WFDB header cannot be parsed (wfdb: {one_line(hexc)})",
            fix="check the .hea file against the WFDB header format, or re-download the record",
            file=header,
        )
    data = ", ".join(dict.fromkeys(n for n in getattr(hdr, "file_name", None) or [] if n))
    return DataError(
        f"the WFDB record cannot be read{f' from {data}' if data else ''} (wfdb: {one_line(exc)})",
        fix="check that the record's data files are complete and match the header; "
        "re-download the record",
        file=header,
    )
