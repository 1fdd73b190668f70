"""WFDB records (PhysioNet: PTB-XL, MIT-BIH, ...) through the wfdb package."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    try:
        with _quiet_wfdb():
            hdr = wfdb.rdheader(record_name)
    except Exception as exc:  # wfdb raises ValueError/HeaderSyntaxError/... for bad headers
        raise DataError(
            f"the WFDB header cannot be parsed (wfdb: {one_line(exc)})",
            fix="check the .hea file against the WFDB header format, or re-download the record",
            file=header,
        ) from exc

    # The header names the files wfdb opens next: each must stay under the data root too (a
    # symlinked .dat would otherwise read data from anywhere). These are wfdb's own parse of the
    # header, in case it differs from the quick one that keyed the cache.
    for name in dict.fromkeys(getattr(hdr, "file_name", None) or []):
        if name:
            confine(
                header.parent / name,
                root,
                what=f"WFDB data file '{name}' named in the header",
                file=header,
            )
    for seg in dict.fromkeys(getattr(hdr, "seg_name", None) or []):
        if seg and seg != "~":
            seg_header = header.parent / f"{seg}.hea"
            confine(seg_header, root, what=f"WFDB segment '{seg}' named in the header", file=header)
            with contextlib.suppress(OSError, ValueError, IndexError):
                for name in _named_files(seg_header):
                    confine(
                        name,
                        root,
                        what=f"WFDB data file '{name.name}' of segment '{seg}'",
                        file=header,
                    )

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
            rec = _samples(hdr, record_name)
    except Exception as exc:  # truncated/corrupt .dat, unsupported formats, ...
        data = ", ".join(dict.fromkeys(n for n in getattr(hdr, "file_name", None) or [] if n))
        raise DataError(
            f"the WFDB record cannot be read{f' from {data}' if data else ''} "
            f"(wfdb: {one_line(exc)})",
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
    return SignalRecord(
        array=np.ascontiguousarray(p_signal.T, dtype=np.float32),
        rate=float(rec.fs) if rec.fs else None,
        lead_names=names,
        path=header,
    )


def _samples(hdr: Any, record_name: str) -> Any:
    """``wfdb.rdrecord(record_name, physical=True)`` reusing the header already parsed.

    wfdb parses a header in milliseconds (pandas lookups per field), and ``rdrecord`` parses it
    again; for a single-segment record the steps ``rdrecord`` takes after its ``rdheader``
    (its defaults: every channel, every sample, smoothed frames, physical float64) are taken
    here on ``hdr``. Multi-segment records, a header without a signal length, and a wfdb whose
    internals differ go through ``rdrecord`` itself (the tests hold the two equal).
    """
    import wfdb
    from wfdb.io import _signal

    if type(hdr) is not wfdb.Record or not hdr.n_sig or hdr.sig_len is None:
        return wfdb.rdrecord(record_name, physical=True)
    channels = list(range(hdr.n_sig))
    try:
        hdr.check_read_inputs(0, hdr.sig_len, channels, True, True, 64)
        hdr.e_d_signal = _signal._rd_segment(
            file_name=hdr.file_name,
            dir_name=os.path.abspath(os.path.dirname(record_name)),
            pn_dir=None,
            fmt=hdr.fmt,
            n_sig=hdr.n_sig,
            sig_len=hdr.sig_len,
            byte_offset=hdr.byte_offset,
            samps_per_frame=hdr.samps_per_frame,
            skew=hdr.skew,
            init_value=hdr.init_value,
            sampfrom=0,
            sampto=hdr.sig_len,
            channels=channels,
            ignore_skew=False,
            no_file=False,
            sig_data=None,
            return_res=64,
        )
    except (AttributeError, TypeError):  # another wfdb version's internals: its public reader
        return wfdb.rdrecord(record_name, physical=True)
    hdr._arrange_fields(channels=channels, sampfrom=0, smooth_frames=True)
    hdr.dac(expanded=False, return_res=64, inplace=True)
    hdr.convert_dtype(True, 64, True)
    return hdr
