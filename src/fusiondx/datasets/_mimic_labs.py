"""MIMIC-IV lab results of an admission's first hours -> a regular (channels, steps) array.

Grid: step ``t`` (0-based) covers ``[admittime + t s, admittime + (t+1) s)`` for a step ``s``
(30 minutes by default). For each lab the cell holds the last value measured up to the end of
that step (forward fill); cells before the
first measurement are NaN, which FusionDx's signal reader fills by holding the first value
backwards. A lab never measured in the window is all zeros (mid reference range, see below).
A second block of channels holds, per lab, 1 where it was measured in that step, else 0, so the
model can tell a measured value from a carried or filled one.

Values are put on their reference range before anything else: ``z = (v - mid) / half`` with
``mid``/``half`` the centre and half-width of the row's ``ref_range_lower``/``ref_range_upper``
(so -1 and +1 are the limits of normal), then compressed with ``sign(z) * log(1 + |z|)`` so that
a creatinine ten times the upper limit stays a few units. Rows without a range use the lab's most
common range; a lab without any range uses its median and interquartile range. None of this looks
at the labels or the split, so it can be done once for all cases without leaking test data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Chosen on the MIMIC-IV demo: the labs measured in the first 24 h of most admissions (sodium to
# RDW cover 76-83 % of admissions), without near-duplicates (MCH, MCHC, MCV, red cells, PT next
# to INR, RDW-SD), plus INR, PTT, bilirubin and lactate, which are sparser but matter for acute
# illness. The same list serves the full MIMIC-IV, so the two stay comparable.
DEFAULT_LABS: dict[int, str] = {
    50983: "sodium",
    50971: "potassium",
    50902: "chloride",
    50882: "bicarbonate",
    50868: "anion_gap",
    51006: "urea_nitrogen",
    50912: "creatinine",
    50931: "glucose",
    50893: "calcium",
    50960: "magnesium",
    50970: "phosphate",
    51221: "hematocrit",
    51222: "hemoglobin",
    51265: "platelets",
    51301: "wbc",
    51277: "rdw",
    51237: "inr",
    51275: "ptt",
    50885: "bilirubin_total",
    50813: "lactate",
}
_COLUMNS = ["hadm_id", "itemid", "charttime", "valuenum", "ref_range_lower", "ref_range_upper"]
_CHUNK_ROWS = 2_000_000  # the full labevents table has ~120 M rows: never read it at once


def window_labs(
    path: Path,
    admit: pd.Series,
    hours: int,
    step_minutes: int,
    itemids: list[int] | None,
    on_chunk: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """The lab rows of each admission's window, with a numeric value.

    Args:
        path: labevents.csv(.gz).
        admit: admittime per hadm_id (index).
        hours: window length.
        step_minutes: grid step; each row gets the index of its step.
        itemids: labs to keep; None keeps all (to choose them afterwards).
        on_chunk: called after each chunk (a progress bar's advance).
    """
    parts = []
    reader = pd.read_csv(path, usecols=_COLUMNS, chunksize=_CHUNK_ROWS)
    for chunk in reader:
        chunk = chunk[chunk["hadm_id"].isin(admit.index) & chunk["valuenum"].notna()]
        if itemids is not None:
            chunk = chunk[chunk["itemid"].isin(itemids)]
        start = admit.reindex(chunk["hadm_id"]).to_numpy()
        time = pd.to_datetime(chunk["charttime"], errors="coerce").to_numpy()
        offset = (time - start) / np.timedelta64(1, "h")
        keep = (offset >= 0) & (offset < hours)
        step = np.floor(offset[keep] * 60 / step_minutes).astype(int)
        chunk = chunk.loc[keep].assign(step=step, time=time[keep])
        parts.append(chunk.drop(columns=["charttime"]))
        if on_chunk is not None:
            on_chunk()
    if not parts:
        return pd.DataFrame(columns=[*_COLUMNS, "step", "time"])
    out = pd.concat(parts, ignore_index=True)
    out["hadm_id"] = out["hadm_id"].astype("int64")
    out["itemid"] = out["itemid"].astype("int64")
    return out


def choose_labs(rows: pd.DataFrame, n: int) -> list[int]:
    """The ``n`` labs measured in the most admissions' windows (ties: smaller itemid)."""
    cover = rows.groupby("itemid")["hadm_id"].nunique().reset_index()
    cover = cover.sort_values(["hadm_id", "itemid"], ascending=[False, True])
    return [int(i) for i in cover["itemid"].head(n)]


def scale_values(rows: pd.DataFrame, itemids: list[int]) -> tuple[np.ndarray, pd.DataFrame]:
    """Reference-range-scaled, log-compressed values, and per lab the fallback used."""
    lo = pd.to_numeric(rows["ref_range_lower"], errors="coerce").to_numpy(dtype=float)
    hi = pd.to_numeric(rows["ref_range_upper"], errors="coerce").to_numpy(dtype=float)
    v = rows["valuenum"].to_numpy(dtype=float)
    ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    info = []
    for item in itemids:
        sel = (rows["itemid"] == item).to_numpy()
        ranged = sel & ok
        if ranged.any():
            pairs = pd.Series(list(zip(lo[ranged], hi[ranged], strict=True))).value_counts()
            a, b = pairs.index[0]
            how = f"each row's reference range (without one: {a:g}-{b:g}, the most common)"
            fill_mid, fill_half = (a + b) / 2, (b - a) / 2
        else:
            q1, med, q3 = np.nanpercentile(v[sel], [25, 50, 75]) if sel.any() else (0.0, 0.0, 1.0)
            fill_mid, fill_half = med, max((q3 - q1) / 2, 1e-6)
            how = f"median {med:g}, half-IQR {fill_half:g} (no reference range)"
        gap = sel & ~ok
        mid[gap], half[gap] = fill_mid, fill_half
        info.append(
            {
                "itemid": item,
                "rows": int(sel.sum()),
                "rows_without_range": int(gap.sum()),
                "scaled_by": how,
            }
        )
    z = (v - mid) / half
    return np.sign(z) * np.log1p(np.abs(z)), pd.DataFrame(info)


def write_grids(
    rows: pd.DataFrame, values: np.ndarray, itemids: list[int], steps: int, folder: Path
) -> dict[int, str]:
    """One ``(2 * labs, steps)`` float32 ``.npy`` per admission with any lab; hadm_id -> file name."""
    folder.mkdir(parents=True, exist_ok=True)
    k_of = {item: k for k, item in enumerate(itemids)}
    frame = rows.assign(value=values, k=rows["itemid"].map(k_of)).sort_values(["hadm_id", "time"])
    # Several values of one lab in one step: the last one stands for the step.
    last = frame.groupby(["hadm_id", "k", "step"], sort=False)["value"].last().reset_index()
    written = {}
    k_count = len(itemids)
    for hadm, g in last.groupby("hadm_id", sort=True):
        grid = np.full((k_count, steps), np.nan, dtype=np.float32)
        k, t_idx = g["k"].to_numpy(dtype=int), g["step"].to_numpy(dtype=int)
        grid[k, t_idx] = g["value"].to_numpy(dtype=np.float32)
        seen = ~np.isnan(grid)
        for t in range(1, steps):
            carry = np.isnan(grid[:, t])
            grid[carry, t] = grid[carry, t - 1]
        grid[~seen.any(axis=1)] = 0.0  # never measured: mid-normal, flagged by the zero mask
        name = f"{int(hadm)}.npy"
        np.save(folder / name, np.concatenate([grid, seen.astype(np.float32)], axis=0))
        written[int(hadm)] = name
    return written


def write_lab_table(
    path: Path, itemids: list[int], scaling: pd.DataFrame, d_labitems: pd.DataFrame
) -> None:
    """``labs.csv``: what each channel of the series holds (lab, value or measured-flag, scaling)."""
    names = d_labitems.drop_duplicates("itemid").set_index("itemid")
    rows: list[dict[str, Any]] = []
    for kind in ("value", "measured"):
        for item in itemids:
            rows.append(
                {
                    "channel": len(rows),
                    "kind": kind,
                    "itemid": item,
                    "label": names["label"].get(item, DEFAULT_LABS.get(item, "")),
                    "fluid": names["fluid"].get(item, "") if "fluid" in names else "",
                }
            )
    table = pd.DataFrame(rows).merge(scaling, on="itemid", how="left")
    table.to_csv(path, index=False, lineterminator="\n")
