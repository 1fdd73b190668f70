"""The README.md written next to a synthetic cohort's manifest (deterministic: no dates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.datasets._synthetic_latent import FINDINGS, MODALITIES, SUBTYPES


def _pct(count: int, total: int) -> str:
    return f"{count} ({100.0 * count / max(total, 1):.1f} %)"


def _variant_lines(
    frame: pd.DataFrame,
    has: dict[str, np.ndarray],
    presence_shortcut: float,
    uninformative: tuple[str, ...],
) -> list[str]:
    """What the opt-in variants planted (nothing at all for the default cohort)."""
    lines: list[str] = []
    if presence_shortcut > 0:
        disease = (frame["label"] == "disease").to_numpy()
        labs = has["labs"]
        # (row name, missing, cases it is counted among)
        rows = [(m, ~has[m], np.ones(len(frame), dtype=bool)) for m in MODALITIES]
        rows += [
            (f"{c} (of present labs)", frame[c].isna().to_numpy() & labs, labs)
            for c in ("troponin", "bnp")
        ]
        lines += [
            f"**Planted presence shortcut** (presence_shortcut = {presence_shortcut}): whether",
            "the report and labs (and, within the labs, troponin and BNP) are present depends on",
            "the label, so WHICH data a case has predicts its label. Missing:",
            "",
            "| modality | among healthy | among disease |",
            "|---|---|---|",
        ]
        for name, gone, base in rows:
            healthy, sick = base & ~disease, base & disease
            lines.append(
                f"| {name} | {_pct(int((gone & healthy).sum()), int(healthy.sum()))} "
                f"| {_pct(int((gone & sick).sum()), int(sick.sum()))} |"
            )
        lines.append("")
    if uninformative:
        demo = " Age and sex come with the labs." if "labs" in uninformative else ""
        lines += [
            f"**Uninformative modalities**: {', '.join(uninformative)}. Rendered from an",
            "independently drawn case, they carry no information about this case's label, and",
            f"fusing them cannot help.{demo} The label and ground-truth columns are the case's own.",
            "",
        ]
    return lines


def write_readme(
    path: Path,
    frame: pd.DataFrame,
    has: dict[str, np.ndarray],
    *,
    seed: int,
    presence_shortcut: float = 0.0,
    uninformative: tuple[str, ...] = (),
    **settings: object,
) -> None:
    """Summarise what was written: counts, prevalence, missingness per modality, the seed.

    Args:
        path: where to write the README.
        frame: the manifest as written.
        has: modality name -> boolean "present" per case.
        seed: the generator seed.
        presence_shortcut: strength of the planted presence shortcut (listed only if > 0).
        uninformative: modalities rendered from another case (listed only if any).
        **settings: the other generation arguments, listed verbatim.
    """
    if presence_shortcut > 0:
        settings["presence_shortcut"] = presence_shortcut
    if uninformative:
        settings["uninformative"] = ", ".join(uninformative)
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
        *(
            f"| {f} | {_pct(int(frame['findings'].str.split(';').apply(lambda x, f=f: f in x).sum()), n)} |"
            for f in FINDINGS
        ),
        "",
        "| modality | present | missing |",
        "|---|---|---|",
        *(
            f"| {m} | {_pct(int(has[m].sum()), n)} | {_pct(int((~has[m]).sum()), n)} |"
            for m in MODALITIES
        ),
        "",
        *_variant_lines(frame, has, presence_shortcut, uninformative),
        f"Lesion masks and boxes: {_pct(int((frame['mask'] != '').sum()), n)} cases.",
        "",
        "Files: `manifest.csv` (one row per case, paths relative to this folder, an empty cell",
        "means the modality is missing), `images/`, `masks/` (uint8 0/255 PNG), `signals/`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
