"""What the references see: one table of every case's raw inputs, built once per study.

Columns, by group (``CaseTable.groups``):

- tabular modality ``m``: ``m.<column>`` raw numbers (NaN where empty) and categories (str);
- text ``m``: ``m`` the cleaned text ('' where missing);
- image ``m``: ``m.px<k>`` the decoded image average-pooled to 16-31 pixels a side (the same
  decode as the trainings', so the same windowing and size);
- signal ``m``: ``m.<lead>.<feature>`` per-lead summary and spectral features of the record
  decoded at the configured rate and length but *not* normalised (amplitudes in their units);
- ``present.<m>`` for every modality, and ``present.<m>.<column>`` for every tabular cell:
  which inputs a case has (what the presence probe sees);
- ``meta.<column>`` for every ``data.metadata_columns`` entry (what the metadata probe sees).

Nothing here depends on the split (images are normalised per image, signals not at all), so the
table is built once and every replicate (seed or fold) only brings its own split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Pooled images keep at least this many pixels a side (and fewer than twice as many).
POOLED_SIDE = 16


@dataclass
class Group:
    """The columns of one input group and how to read them."""

    kind: str  # image | signal | text | tabular | presence | metadata
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: str | None = None
    present: str | None = None  # the column saying whether the case has this modality


@dataclass
class CaseTable:
    """Every case's raw inputs as one DataFrame, with the column groups."""

    ids: np.ndarray
    frame: pd.DataFrame
    groups: dict[str, Group]
    fingerprint: str = ""
    """A hash of the inputs, so that a rerun of the study can reuse references fitted on them."""

    def add_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Add derived columns (e.g. embeddings) once; later replicates reuse them."""
        new = pd.DataFrame(columns, index=self.frame.index)
        self.frame = pd.concat([self.frame, new], axis=1)

    def modalities(self) -> list[str]:
        return [g for g, grp in self.groups.items() if grp.kind not in ("presence", "metadata")]


def build_table(cfg: object, prepared: object, df: pd.DataFrame, metadata: list[str]) -> CaseTable:
    """The table from a prepared store (decoded arrays, masks) and its manifest."""
    store = prepared.store  # type: ignore[attr-defined]
    ids = store.ids
    cols: dict[str, np.ndarray | list] = {}
    groups: dict[str, Group] = {}
    presence: list[str] = []
    for i, name in enumerate(store.modalities):
        mod = cfg.modality(name)  # type: ignore[attr-defined]
        pre = prepared.preprocessors[name]  # type: ignore[attr-defined]
        present = store.mask[:, i]
        pcol = f"present.{name}"
        cols[pcol] = present.astype(np.float64)
        presence.append(pcol)
        if mod.kind == "tabular":
            num = pre.numbers(df)
            g = Group("tabular", present=pcol)
            for j, c in enumerate(pre.numeric):
                cols[f"{name}.{c}"] = num[:, j]
                g.numeric.append(f"{name}.{c}")
            for c in pre.categorical:
                cols[f"{name}.{c}"] = df[c].where(df[c].notna(), None).to_numpy(dtype=object)
                g.categorical.append(f"{name}.{c}")
            for c in mod.columns:
                cols[f"present.{name}.{c}"] = df[c].notna().to_numpy(np.float64)
                presence.append(f"present.{name}.{c}")
        elif mod.kind == "text":
            texts = pre.texts(df, present, pd.Series(ids))
            cols[name] = np.array([texts.get(k, "") for k in range(len(ids))], dtype=object)
            g = Group("text", text=name, present=pcol)
        elif mod.kind == "image":
            px = _pooled(np.asarray(store.inputs[name][""], dtype=np.float32))
            px[~present] = 0.0
            g = Group("image", numeric=[f"{name}.px{k}" for k in range(px.shape[1])], present=pcol)
            cols.update(dict(zip(g.numeric, px.T, strict=True)))
        else:
            rate = mod.preprocessing.rate or mod.preprocessing.source_rate
            feats = signal_features(np.asarray(store.inputs[name][""], dtype=np.float64), rate)
            feats.loc[~present] = np.nan
            g = Group("signal", numeric=[f"{name}.{c}" for c in feats.columns], present=pcol)
            cols.update({f"{name}.{c}": feats[c].to_numpy() for c in feats.columns})
        groups[name] = g
    groups["presence"] = Group("presence", numeric=presence)
    if metadata:
        meta = Group("metadata")
        for c in metadata:
            values = df[c]
            as_num = pd.to_numeric(values, errors="coerce")
            if values.notna().any() and as_num.notna().sum() == values.notna().sum():
                cols[f"meta.{c}"] = as_num.to_numpy(np.float64)
                meta.numeric.append(f"meta.{c}")
            else:
                cols[f"meta.{c}"] = values.where(values.notna(), None).to_numpy(dtype=object)
                meta.categorical.append(f"meta.{c}")
        groups["metadata"] = meta
    frame = pd.DataFrame(cols, index=pd.Index(ids, name="case_id"))
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return CaseTable(ids, frame, groups, digest.hexdigest())


def _pooled(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, F): average-pooled so each side keeps 16-31 pixels."""
    n, c, *spatial = x.shape
    f = [max(1, s // POOLED_SIDE) for s in spatial]
    crop = tuple(slice(0, (s // k) * k) for s, k in zip(spatial, f, strict=True))
    index = (slice(None), slice(None), *crop)
    x = x[index]
    shape = [n, c]
    for s, k in zip(x.shape[2:], f, strict=True):
        shape += [s // k, k]
    return x.reshape(shape).mean(axis=tuple(range(3, len(shape), 2))).reshape(n, -1)


SIGNAL_FEATURES = (
    "mean",
    "std",
    "min",
    "max",
    "p05",
    "p50",
    "p95",
    "mean_abs_diff",
    "skew",
    "kurtosis",
    "dom_freq",
    "power_low",
    "power_mid",
    "power_high",
    "acf_peak_lag",
    "acf_peak",
)


def signal_features(x: np.ndarray, rate: float | None) -> pd.DataFrame:
    """Per lead: amplitude summary, shape, Welch band powers and the autocorrelation peak
    (the dominant period, e.g. the RR interval of an ECG), in seconds and Hz where ``rate``
    is known (else in samples and cycles per sample). ``x`` is (N, leads, samples)."""
    from scipy import signal as sps
    from scipy import stats

    n, leads, t = x.shape
    fs = float(rate) if rate else 1.0
    out: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        q = np.percentile(x, [5, 50, 95], axis=2)
        freqs, power = sps.welch(x, fs=fs, nperseg=min(256, t), axis=2)
        total = power.sum(axis=2) + 1e-12
        edges = (
            np.quantile(freqs, [0, 1 / 3, 2 / 3, 1]) if not rate else np.array([0, 5, 15, np.inf])
        )
        band = [
            power[:, :, (freqs >= lo) & (freqs < hi)].sum(axis=2) / total
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        centred = x - x.mean(axis=2, keepdims=True)
        spec = np.fft.rfft(centred, n=2 * t, axis=2)
        acf = np.fft.irfft(spec * np.conj(spec), axis=2)[:, :, :t]
        acf = acf / np.maximum(acf[:, :, :1], 1e-12)
        lo = max(1, int(0.25 * fs)) if rate else 2  # ignore lags below 0.25 s (one beat at 240/min)
        lag = (
            lo + np.argmax(acf[:, :, lo : t // 2], axis=2)
            if t // 2 > lo
            else np.zeros((n, leads), int)
        )
        per_lead = {
            "mean": x.mean(axis=2),
            "std": x.std(axis=2),
            "min": x.min(axis=2),
            "max": x.max(axis=2),
            "p05": q[0],
            "p50": q[1],
            "p95": q[2],
            "mean_abs_diff": np.abs(np.diff(x, axis=2)).mean(axis=2),
            "skew": stats.skew(x, axis=2),
            "kurtosis": stats.kurtosis(x, axis=2),
            "dom_freq": freqs[np.argmax(power, axis=2)],
            "power_low": band[0],
            "power_mid": band[1],
            "power_high": band[2],
            "acf_peak_lag": lag / fs,
            "acf_peak": np.take_along_axis(acf, lag[:, :, None], axis=2)[:, :, 0],
        }
    for k in range(leads):
        for name in SIGNAL_FEATURES:
            out[f"lead{k}.{name}"] = per_lead[name][:, k]
    return pd.DataFrame(out).replace([np.inf, -np.inf], np.nan)
