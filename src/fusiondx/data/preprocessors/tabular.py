"""Structured data -> standardised numbers with missing indicators, and category ids."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.data.preprocessors.base import Arrays, Preprocessor
from fusiondx.errors import DataError, case_of, line_of
from fusiondx.types import ModalitySpec

MISSING_ID, UNKNOWN_ID = 0, 1
NOT_A_NUMBER_FIX = (
    "write a number, leave the cell empty for a missing value, or list the column "
    "under 'categorical' if it holds categories"
)


class TabularPreprocessor(Preprocessor):
    """Numeric columns standardised with training statistics; a NaN becomes 0 plus a missing flag
    (never a silent zero); categories get ids learned on train, with ids for missing and unseen."""

    kind = "tabular"

    def __init__(self, cfg: Any, root: Any) -> None:
        super().__init__(cfg, root)
        self.numeric = [c for c in cfg.columns if c not in cfg.categorical]
        self.categorical = list(cfg.categorical)
        self.mean: list[float] = []
        self.std: list[float] = []
        self.vocab: dict[str, list[str]] = {}
        self.empty_on_train: list[str] = []

    def numbers(self, df: pd.DataFrame) -> np.ndarray:
        """(N, n_numeric) float64, NaN where empty or not a finite number (``check`` reports those)."""
        out = np.empty((len(df), len(self.numeric)), dtype=np.float64)
        for j, col in enumerate(self.numeric):
            num = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            out[:, j] = np.where(np.isfinite(num), num, np.nan)
        return out

    def check(
        self,
        df: pd.DataFrame,
        ids: pd.Series | None,
        errors: list[DataError],
        rows: np.ndarray | None = None,
    ) -> None:
        """Every cell of a numeric column that holds something other than a finite number
        (in the rows ``rows`` of ``df`` only, when given)."""
        for col in self.numeric:
            if col not in df.columns:
                continue  # reported as a missing column
            raw = df[col] if rows is None else df[col].iloc[rows]
            num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
            bad = np.flatnonzero((np.isnan(num) & raw.notna().to_numpy()) | np.isinf(num))
            for i in bad:
                pos = int(i) if rows is None else int(rows[i])
                errors.append(
                    DataError(
                        f"The value '{raw.iloc[i]}' is not a finite number.",
                        row=line_of(pos),
                        column=col,
                        case_id=case_of(ids, pos),
                        fix=NOT_A_NUMBER_FIX,
                    )
                )

    def fit(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> None:
        x = self.numbers(df)[present]
        # A column empty on train has no statistics: it will only ever be 'missing' (a note of
        # `fusiondx validate`; a column empty for every case is an error of the manifest checks).
        self.empty_on_train = [c for c in self.cfg.columns if df.loc[present, c].isna().all()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean / std of an all-NaN column
            mean = np.nanmean(x, axis=0) if len(x) else np.zeros(len(self.numeric))
            std = np.nanstd(x, axis=0) if len(x) else np.ones(len(self.numeric))
        if not self.cfg.preprocessing.standardize:
            mean, std = np.zeros_like(mean), np.ones_like(std)
        self.mean = [float(v) if np.isfinite(v) else 0.0 for v in mean]
        self.std = [float(v) if np.isfinite(v) and v > 0 else 1.0 for v in std]
        self.vocab = {
            c: sorted(df.loc[present, c].dropna().astype(str).unique()) for c in self.categorical
        }

    def partial(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> dict[str, Any]:
        """Per numeric column: the count of values, their mean and sum of squared deviations
        (merged exactly by Chan's formula); per categorical column: the values seen."""
        x = self.numbers(df)[present]
        n = (~np.isnan(x)).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.where(n > 0, np.nanmean(x, axis=0) if len(x) else 0.0, 0.0)
            m2 = np.where(n > 0, np.nansum((x - mean) ** 2, axis=0), 0.0)
        return {
            "n": [int(v) for v in n],
            "mean": [float(v) for v in mean],
            "m2": [float(v) for v in m2],
            "values": {
                c: sorted(df.loc[present, c].dropna().astype(str).unique())
                for c in self.categorical
            },
        }

    def merge(self, parts: list[dict[str, Any]]) -> None:
        k = len(self.numeric)
        n, mean, m2 = np.zeros(k), np.zeros(k), np.zeros(k)
        for part in parts:
            nb, mb, m2b = (np.asarray(part[key], dtype=np.float64) for key in ("n", "mean", "m2"))
            total = n + nb
            safe = np.where(total > 0, total, 1.0)
            delta = mb - mean
            mean = np.where(total > 0, mean + delta * nb / safe, 0.0)
            m2 = m2 + m2b + delta**2 * n * nb / safe
            n = total
        std = np.sqrt(np.where(n > 0, m2 / np.where(n > 0, n, 1.0), np.nan))
        if not self.cfg.preprocessing.standardize:
            mean, std = np.zeros(k), np.ones(k)
        self.mean = [
            float(v) if c > 0 and np.isfinite(v) else 0.0 for v, c in zip(mean, n, strict=True)
        ]
        self.std = [float(v) if np.isfinite(v) and v > 0 else 1.0 for v in std]
        self.vocab = {
            c: sorted({v for part in parts for v in part["values"].get(c, [])})
            for c in self.categorical
        }

    def notes(self) -> list[str]:
        return [
            f"column '{c}' of modality '{self.name}' has no value in any training case; the model "
            "will only ever see it as missing"
            for c in self.empty_on_train
        ]

    def spec(self) -> ModalitySpec:
        cards = tuple(len(self.vocab.get(c, [])) + 2 for c in self.categorical)
        return ModalitySpec(self.name, "tabular", n_numeric=len(self.numeric), cardinalities=cards)

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        n, k = len(self.numeric), len(self.categorical)
        return {
            "numeric": ((n,), np.dtype(np.float32)),
            "numeric_missing": ((n,), np.dtype(np.float32)),
            "categorical": ((k,), np.dtype(np.int64)),
        }

    def encode(
        self, x: np.ndarray, categories: Sequence[Iterable[Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays of checked values: ``x`` the numbers (NaN where missing), ``categories``
        the raw values of each categorical column. Standardised numbers (missing ones 0), the
        missing flags, and the category ids (MISSING_ID, UNKNOWN_ID, else the vocabulary's).
        ``transform`` and the served model's one-case decoding both go through here."""
        missing = np.isnan(x)
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        z[missing] = 0.0
        cat = np.empty((len(x), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            index = {v: i + 2 for i, v in enumerate(self.vocab[col])}
            cat[:, j] = [
                MISSING_ID if pd.isna(v) else index.get(str(v), UNKNOWN_ID) for v in categories[j]
            ]
        return z, missing, cat

    def transform(
        self,
        df: pd.DataFrame,
        present: np.ndarray,
        ids: pd.Series,
        out: Arrays,
        errors: list[DataError],
        advance: Callable[[int], None],
    ) -> None:
        # Only the present rows are read: a decode in shards calls this once per shard.
        rows = np.flatnonzero(present)
        before = len(errors)
        self.check(df, ids, errors, rows)
        if len(errors) > before:
            return
        sub = df.iloc[rows]
        z, missing, cat = self.encode(self.numbers(sub), [sub[c] for c in self.categorical])
        out["numeric"][rows] = z
        out["numeric_missing"][rows] = missing
        if self.categorical:
            out["categorical"][rows] = cat
        advance(len(rows))

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std, self.vocab = state["mean"], state["std"], state["vocab"]
