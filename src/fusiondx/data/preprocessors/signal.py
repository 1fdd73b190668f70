"""Physiological signals (WFDB, CSV, NPY) -> (leads, length) float arrays at a fixed rate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.readers.signal import lead_count, preprocess_signal, read_signal, record_files
from fusiondx.errors import DataError
from fusiondx.types import ModalitySpec

# Records whose headers are read to infer the lead count; beyond it an evenly spread sample.
LEAD_SAMPLE = 2000


class SignalPreprocessor(FilePreprocessor):
    """Resamples, crops or pads and normalises each record; the lead count is fixed at fit time."""

    kind = "signal"

    def __init__(self, cfg: Any, root: Path) -> None:
        super().__init__(cfg, root)
        p = cfg.preprocessing
        self.n_leads: int | None = len(p.lead_names) if p.lead_names else p.leads
        # Lead count -> records read with it, when the count was inferred rather than configured.
        self.lead_votes: dict[int, int] | None = None

    def fit(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> None:
        if self.n_leads is not None:
            return
        # Without a declared lead count, the majority of the training records sets it (one odd
        # record first in the manifest must not make every other record look wrong); every
        # record is then checked against it, and the odd ones are named.
        errors: list[DataError] = []
        paths = list(self.iter_paths(df, present, ids, errors))
        if len(paths) > LEAD_SAMPLE:
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, LEAD_SAMPLE).round().astype(int)]
        votes: Counter[int] = Counter()
        for pos, path in paths:
            try:
                votes[lead_count(path, source_rate=self.cfg.preprocessing.source_rate)] += 1
            except DataError as err:  # reported with every other bad record when decoding
                errors.append(err.at(case_id=str(ids.iloc[pos]), column=self.cfg.column))
        if not votes:
            if errors:
                raise errors[0]
            return
        self.n_leads = votes.most_common(1)[0][0]
        self.lead_votes = dict(votes)

    def spec(self) -> ModalitySpec:
        return ModalitySpec(self.name, "signal", in_channels=int(self.n_leads or 1),
                            length=self.cfg.preprocessing.length)

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {"": ((int(self.n_leads or 1), self.cfg.preprocessing.length), np.dtype(np.float32))}

    def files_of(self, path: Path) -> list[Path]:
        return record_files(path)

    def load_file(self, path: Path) -> np.ndarray:
        p = self.cfg.preprocessing
        rec = read_signal(path, source_rate=p.source_rate, root=self.root)
        if self.lead_votes and rec.array.shape[0] != self.n_leads:
            raise self._odd_leads(rec.array.shape[0], rec.lead_names, rec.path)
        return preprocess_signal(rec, rate=p.rate, length=p.length, leads=self.n_leads,
                                 lead_names=p.lead_names, normalize=p.normalize, crop=p.crop,
                                 min_fraction=p.min_fraction)

    def _odd_leads(self, n: int, names: list[str], path: Path | None) -> DataError:
        votes = self.lead_votes or {}
        major = int(self.n_leads or 0)
        return DataError(
            f"the signal has {n} lead(s) ({', '.join(names)}), but {votes.get(major, 0)} of the "
            f"{sum(votes.values())} training records read have {major}: with no `leads:` in the "
            f"config, the lead count was inferred from the majority of the records",
            fix=f"if {major} leads is right, fix or remove the case(s) with other lead counts, or pick "
                f"leads by name with lead_names; otherwise set `leads:` (e.g. `leads: {major}`) under "
                f"modalities[{self.name}].preprocessing",
            file=path)

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_leads": self.n_leads}
        if self.lead_votes:
            out["lead_votes"] = {str(k): v for k, v in sorted(self.lead_votes.items())}
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.n_leads = state["n_leads"]
        votes = state.get("lead_votes")
        self.lead_votes = {int(k): int(v) for k, v in votes.items()} if votes else None
