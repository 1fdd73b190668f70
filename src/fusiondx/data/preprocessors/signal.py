"""Physiological signals (WFDB, CSV, NPY) -> (leads, length) float arrays at a fixed rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.data.manifest import line_of
from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.readers.signal import preprocess_signal, read_signal
from fusiondx.errors import DataError
from fusiondx.types import ModalitySpec


class SignalPreprocessor(FilePreprocessor):
    """Resamples, crops or pads and normalises each record; the lead count is fixed at fit time."""

    kind = "signal"

    def __init__(self, cfg: Any, root: Path) -> None:
        super().__init__(cfg, root)
        p = cfg.preprocessing
        self.n_leads: int | None = len(p.lead_names) if p.lead_names else p.leads

    def fit(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> None:
        if self.n_leads is not None:
            return
        # Without a declared lead count, the first readable training record sets it; every other
        # record is then checked against it.
        errors: list[DataError] = []
        for pos, path in self.iter_paths(df, present, ids, errors):
            try:
                self.n_leads = int(read_signal(path, source_rate=self.cfg.preprocessing.source_rate).array.shape[0])
                return
            except DataError as err:
                raise err.at(case_id=str(ids.iloc[pos]), row=line_of(pos), column=self.cfg.column) from None
        if errors:
            raise errors[0]

    def spec(self) -> ModalitySpec:
        return ModalitySpec(self.name, "signal", in_channels=int(self.n_leads or 1),
                            length=self.cfg.preprocessing.length)

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {"": ((int(self.n_leads or 1), self.cfg.preprocessing.length), np.dtype(np.float32))}

    def load_file(self, path: Path) -> np.ndarray:
        p = self.cfg.preprocessing
        rec = read_signal(path, source_rate=p.source_rate)
        return preprocess_signal(rec, rate=p.rate, length=p.length, leads=self.n_leads,
                                 lead_names=p.lead_names, normalize=p.normalize, crop=p.crop,
                                 min_fraction=p.min_fraction)

    def state(self) -> dict[str, Any]:
        return {"n_leads": self.n_leads}

    def load_state(self, state: dict[str, Any]) -> None:
        self.n_leads = state["n_leads"]
