"""The README.md written next to a synthetic cohort's manifest (deterministic: no dates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.datasets._synthetic_latent import FINDINGS, MODALITIES, SUBTYPES


def _pct(count: int, total: int) -> str:
    return f"{count} ({100.0 * count / max(total, 1):.1f} %)"


def write_readme(path: Path, frame: pd.DataFrame, has: dict[str, np.ndarray], *, seed: int,
                 **settings: object) -> None:
    """Summarise what was written: counts, prevalence, missingness per modality, the seed.

    Args:
        path: where to write the README.
        frame: the manifest as written.
        has: modality name -> boolean "present" per case.
        seed: the generator seed.
        **settings: the other generation arguments, listed verbatim.
    """
    n = len(frame)
    lines = [
        "# FusionDx synthetic cohort",
        "",
        "Written by `fusiondx.datasets.synthetic.make_cohort`; see `docs/cohort.md` in FusionDx for",
        "the generative story. Regenerate with the same arguments to get identical files.",
        "",
        f"- seed: {seed}",
        *(f"- {k}: {v}" for k, v in settings.items()),
        f"- cases: {n}",
        f"- patients: {frame['patient_id'].nunique()} "
        f"({int((frame['patient_id'].value_counts() > 1).sum())} with two cases)",
        f"- sites: {', '.join(f'{s} ({c})' for s, c in frame['site'].value_counts().sort_index().items())}",
        f"- disease prevalence: {_pct(int((frame['label'] == 'disease').sum()), n)}",
        "",
        "| subtype | cases |",
        "|---|---|",
        *(f"| {s} | {_pct(int((frame['subtype'] == s).sum()), n)} |" for s in SUBTYPES),
        "",
        "| finding | cases |",
        "|---|---|",
        *(f"| {f} | {_pct(int(frame['findings'].str.split(';').apply(lambda x, f=f: f in x).sum()), n)} |"
          for f in FINDINGS),
        "",
        "| modality | present | missing |",
        "|---|---|---|",
        *(f"| {m} | {_pct(int(has[m].sum()), n)} | {_pct(int((~has[m]).sum()), n)} |"
          for m in MODALITIES),
        "",
        f"Lesion masks and boxes: {_pct(int((frame['mask'] != '').sum()), n)} cases.",
        "",
        "Files: `manifest.csv` (one row per case, paths relative to this folder, an empty cell",
        "means the modality is missing), `images/`, `masks/` (uint8 0/255 PNG), `signals/`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
