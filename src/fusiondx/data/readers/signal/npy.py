"""Signals saved with ``numpy.save`` as ``(leads, samples)`` arrays."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from fusiondx.data.readers._base import Example, SignalReader, SignalRecord
from fusiondx.data.readers._common import load_numeric_npy
from fusiondx.errors import DataError
from fusiondx.registry import register_reader


@register_reader("npy_signal", kind="signal", suffixes=(".npy",))
class NpySignalReader(SignalReader):
    """A ``(leads, samples)`` array, or a 1D array for one lead.

    Leads are named ``"0"``, ``"1"``, ...; the file carries no rate: it is ``source_rate``.
    Never unpickles anything.
    """

    def read(
        self,
        path: Path,
        *,
        source_rate: float | None = None,
        root: Path | None = None,
        lead_names: list[str] | None = None,
    ) -> SignalRecord:
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
        rate = float(source_rate) if source_rate is not None else None
        return SignalRecord(
            array=np.ascontiguousarray(data, dtype=np.float32),
            rate=rate,
            lead_names=[str(i) for i in range(data.shape[0])],
            path=path,
        )

    def count_leads(self, path: Path, *, source_rate: float | None = None) -> int:
        with contextlib.suppress(OSError, ValueError):
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            if (len(shape) == 1 or (len(shape) == 2 and shape[0] <= shape[1])) and 0 not in shape:
                return 1 if len(shape) == 1 else int(shape[0])
        return super().count_leads(path, source_rate=source_rate)  # reading names the problem

    @classmethod
    def write_example(cls, folder: Path, rng: np.random.Generator) -> Example:
        data = rng.normal(size=(3, 40)).astype(np.float32)
        path = folder / "signal.npy"
        np.save(path, data, allow_pickle=False)
        return Example(path, data, lead_names=["0", "1", "2"])
