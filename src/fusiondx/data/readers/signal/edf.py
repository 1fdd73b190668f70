"""EDF and BDF recordings (EEG, polysomnography; EDF+/BDF+ too) through edfio.

edfio is pure Python on numpy (no compiled code, nothing else pulled in) and reads EDF, EDF+C,
BDF and BDF+C. The format is told by the file's first bytes (a BDF starts with 0xFF 'BIOSEMI'),
not by its suffix. Values are physical (the header's digital -> physical scaling applied), the
rate and channel names come from the header, and EDF+/BDF+ annotation channels are skipped.

All kept channels must share one sampling rate, as a ``(leads, samples)`` array needs. When a
file mixes rates (EEG at 256 Hz beside a 1 Hz SpO2 channel), the channels named in the config's
``lead_names`` decide: if they all share a rate, the channels of that rate are read and the
others left out; otherwise the file is refused with its channels and their rates listed.
Nothing is resampled here: a silent upsampling of a 1 Hz channel would pass for a real signal.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.data.readers._base import Example, SignalReader, SignalRecord
from fusiondx.data.readers._common import one_line
from fusiondx.errors import DataError
from fusiondx.registry import register_reader

_ANNOTATION_LABELS = frozenset({"EDF Annotations", "BDF Annotations"})
_RECORDS = re.compile(r"indicates (-?\d+) data records, but file contains (\d+)")


def _is_bdf(head: bytes) -> bool:
    return head[:8] == b"\xffBIOSEMI"


@register_reader("edf", kind="signal", suffixes=(".edf", ".bdf"))
class EdfReader(SignalReader):
    """An EDF/BDF recording (EEG, polysomnography), EDF+/BDF+ annotation channels skipped.

    Physical values, the header's rate and channel labels; channels of one sampling rate (see the
    module docstring for files that mix rates).
    """

    def read(
        self,
        path: Path,
        *,
        source_rate: float | None = None,
        root: Path | None = None,
        lead_names: list[str] | None = None,
    ) -> SignalRecord:
        edf = _load(path)
        signals = list(edf.signals)  # edfio leaves the annotation channels out
        if not signals:
            raise DataError(
                "the EDF file holds no signal channels (annotations only)",
                fix="point the manifest at a recording with signal channels",
                file=path,
            )
        names = [str(s.label).strip() for s in signals]
        rates = [float(s.sampling_frequency) for s in signals]
        keep = _same_rate(path, names, rates, lead_names)
        rate = rates[keep[0]]
        data = [np.asarray(signals[i].data) for i in keep]
        if not (rate > 0 and np.isfinite(rate)) or data[0].size == 0:
            raise DataError(
                f"the EDF file holds no samples (rate {rate:g} Hz, {data[0].size} samples)",
                fix="check the recording; re-export it from the acquisition software",
                file=path,
            )
        return SignalRecord(
            array=np.ascontiguousarray(np.stack(data), dtype=np.float32),
            rate=rate,
            lead_names=[names[i] for i in keep],
            path=path,
        )

    def count_leads(self, path: Path, *, source_rate: float | None = None) -> int:
        try:
            with path.open("rb") as fh:
                head = fh.read(256)
                n = int(head[252:256])
                labels = fh.read(16 * n)
            if n > 0 and len(labels) == 16 * n:
                found = [labels[16 * i : 16 * (i + 1)].decode("latin-1").strip() for i in range(n)]
                return sum(label not in _ANNOTATION_LABELS for label in found)
        except (OSError, ValueError):
            pass
        return super().count_leads(path, source_rate=source_rate)  # reading names the problem

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        from edfio import Edf, EdfAnnotation, EdfSignal

        data = np.clip(rng.normal(0.0, 50.0, (2, 128)), -400, 400)
        signals = [
            EdfSignal(d, 64, label=name, physical_dimension="uV", physical_range=(-500, 500))
            for d, name in zip(data, ("Fp1", "Fp2"), strict=True)
        ]
        path = folder / "eeg.edf"
        Edf(signals, annotations=[EdfAnnotation(0.5, None, "eyes closed")]).write(path)
        # 16-bit samples over [-500, 500] uV: a step of 1000 / 65535 uV.
        return Example(
            path, data.astype(np.float32), atol=1000 / 65535, rate=64.0, lead_names=["Fp1", "Fp2"]
        )


def _load(path: Path) -> Any:
    """The edfio recording of ``path``; a damaged or cut file is a DataError naming it."""
    import edfio

    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError as exc:
        raise DataError(
            f"the EDF file cannot be opened ({one_line(exc)})",
            fix="check the file's permissions",
            file=path,
        ) from exc
    kind = "BDF" if _is_bdf(head) else "EDF"
    if head[192:197] in (b"EDF+D", b"BDF+D"):
        raise DataError(
            f"the {kind} file is a discontinuous ({kind}+D) recording, with gaps between its "
            "data records",
            fix=f"export it as a continuous {kind}+C file, or split it at the gaps",
            file=path,
        )
    edf: Any
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Latin-1 never fails: labels with non-ASCII characters occur in the wild.
            if kind == "BDF":
                edf = edfio.read_bdf(path, header_encoding="latin-1")
            else:  # decoded now, so that a damaged file fails here and no file stays open
                edf = edfio.read_edf(path, lazy_load_data=False, header_encoding="latin-1")
        except Exception as exc:  # edfio raises ValueError, IndexError, ... for broken headers
            raise DataError(
                f"the {kind} file cannot be read (edfio: {one_line(exc)})",
                fix=f"check that the file is a complete, valid {kind} file; re-export it",
                file=path,
            ) from exc
    for w in caught:
        msg = one_line(w.message)  # type: ignore[arg-type]
        count = _RECORDS.search(msg)
        cut = "Incomplete data record" in msg or (
            count is not None and 0 <= int(count[2]) < int(count[1])
        )
        if cut:
            raise DataError(
                f"the {kind} file is cut short (edfio: {msg})",
                fix="copy or export the complete file again",
                file=path,
            )
    return edf


def _find(name: str, names: list[str]) -> int | None:
    """Index of a channel by name: exact first, then case-insensitive (as lead_names selects)."""
    if name in names:
        return names.index(name)
    lowered = [n.lower() for n in names]
    return lowered.index(name.lower()) if name.lower() in lowered else None


def _same_rate(
    path: Path, names: list[str], rates: list[float], lead_names: list[str] | None
) -> list[int]:
    """The channels to read: all of them when they share a rate, else those with the rate of the
    channels ``lead_names`` picks (when they share one)."""
    if len(set(rates)) == 1:
        return list(range(len(names)))
    picked = [_find(str(n), names) for n in lead_names or []]
    if picked and all(p is not None for p in picked) and len({rates[p] for p in picked}) == 1:  # type: ignore[index]
        rate = rates[picked[0]]  # type: ignore[index]
        return [i for i, r in enumerate(rates) if r == rate]
    groups: dict[float, list[str]] = {}
    for n, r in zip(names, rates, strict=True):
        groups.setdefault(r, []).append(n)
    listed = "; ".join(
        f"{', '.join(ns)} at {r:g} Hz" for r, ns in sorted(groups.items(), reverse=True)
    )
    top = max(groups, key=lambda r: len(groups[r]))
    example = ", ".join(groups[top][:3])
    chosen = (
        " The channels chosen by lead_names "
        f"({', '.join(map(str, lead_names))}) do not share one rate, or are not all in the file."
        if lead_names
        else ""
    )
    raise DataError(
        f"the channels of the EDF file have different sampling rates: {listed}.{chosen}",
        fix="choose channels of one rate with lead_names under the modality's preprocessing "
        f"(e.g. lead_names: [{example}]), or resample the file to one rate",
        file=path,
    )
