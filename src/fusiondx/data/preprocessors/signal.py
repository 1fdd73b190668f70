"""Physiological signals (WFDB, EDF/BDF, CSV, NPY) -> (leads, length) float arrays at a fixed rate.

:func:`preprocess_signal` turns one decoded :class:`SignalRecord` into a fixed shape (lead
selection, gap filling, resampling, crop/pad, normalisation); :class:`SignalPreprocessor`
applies it to every case of a modality and infers the lead count from the majority of records.

Missing samples (NaN, which WFDB uses for samples marked invalid) are kept by the readers and
filled here by linear interpolation; a lead with no valid sample at all is an error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.data.preprocessors.base import FilePreprocessor
from fusiondx.data.readers import SignalRecord, lead_count, read_signal, record_files
from fusiondx.errors import ConfigError, DataError, did_you_mean
from fusiondx.types import ModalitySpec

# Records whose headers are read to infer the lead count; beyond it an evenly spread sample.
LEAD_SAMPLE = 2000

_NORMALIZE_CHOICES = ("per_lead", "none")
_CROP_CHOICES = ("start", "center")
_SOURCE_RATE_FIX = (
    "set preprocessing.source_rate to the sampling rate of the files (in Hz), or set "
    "preprocessing.rate to null to use the samples as they are"
)


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
            paths = [
                paths[i] for i in np.linspace(0, len(paths) - 1, LEAD_SAMPLE).round().astype(int)
            ]
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

    def partial(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> dict[str, Any]:
        """The lead counts of this site's training records (nothing when ``leads`` is set)."""
        if self.n_leads is not None and self.lead_votes is None:
            return {}
        self.fit(df, present, ids)
        return {"votes": {str(k): v for k, v in (self.lead_votes or {}).items()}}

    def merge(self, parts: list[dict[str, Any]]) -> None:
        votes: Counter[int] = Counter()
        for part in parts:
            votes.update({int(k): int(v) for k, v in part.get("votes", {}).items()})
        if votes:  # ties go to the smaller count, the same at every site
            self.n_leads = max(sorted(votes), key=lambda k: votes[k])
            self.lead_votes = dict(sorted(votes.items()))

    def spec(self) -> ModalitySpec:
        return ModalitySpec(
            self.name,
            "signal",
            in_channels=int(self.n_leads or 1),
            length=self.cfg.preprocessing.length,
        )

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {"": ((int(self.n_leads or 1), self.cfg.preprocessing.length), np.dtype(np.float32))}

    def files_of(self, path: Path) -> list[Path]:
        return record_files(path)

    def load_file(self, path: Path) -> np.ndarray:
        p = self.cfg.preprocessing
        rec = read_signal(path, source_rate=p.source_rate, root=self.root, lead_names=p.lead_names)
        if self.lead_votes and rec.array.shape[0] != self.n_leads:
            raise self._odd_leads(rec.array.shape[0], rec.lead_names, rec.path)
        return preprocess_signal(
            rec,
            rate=p.rate,
            length=p.length,
            leads=self.n_leads,
            lead_names=p.lead_names,
            normalize=p.normalize,
            crop=p.crop,
            min_fraction=p.min_fraction,
        )

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
            file=path,
        )

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_leads": self.n_leads}
        if self.lead_votes:
            out["lead_votes"] = {str(k): v for k, v in sorted(self.lead_votes.items())}
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.n_leads = state["n_leads"]
        votes = state.get("lead_votes")
        self.lead_votes = {int(k): int(v) for k, v in votes.items()} if votes else None


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
        rec: the signal as read by :func:`fusiondx.data.readers.read_signal`.
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
