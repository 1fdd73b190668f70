"""Built-in synthetic multimodal cohort, written to disk in the real manifest format.

:func:`make_cohort` draws a latent disease state per case (healthy, or pulmonary / cardiac /
mixed involvement with a severity) and renders partial, noisy evidence of it in four modalities:
a chest-radiograph-like image (PNG or DICOM, with lesion mask and box), a multi-lead ECG (WFDB
or NPY), a free-text report and a block of labs/vitals. No single modality is enough to recognise
disease well; together they are. See ``docs/cohort.md`` for the generative story.

Two opt-in variants test whether a study tells the truth: ``presence_shortcut`` plants a
label-dependent missingness pattern (which modalities are present predicts the label), and
``uninformative`` renders the listed modalities from an independent case, so they carry no
information about the label and fusing them cannot help.

Example:
    >>> from fusiondx.datasets.synthetic import make_cohort
    >>> manifest = make_cohort("demo_out/cohort", n_cases=200, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fusiondx.datasets import _synthetic_ecg as ecg
from fusiondx.datasets import _synthetic_image as img
from fusiondx.datasets import _synthetic_sites as sites
from fusiondx.datasets._synthetic_files import write_images, write_signals
from fusiondx.datasets._synthetic_labs import LAB_COLUMNS, draw_labs
from fusiondx.datasets._synthetic_latent import (
    FINDINGS,
    MODALITIES,
    SUBTYPES,
    Latent,
    draw_latent,
    draw_missing,
    draw_survival,
)
from fusiondx.datasets._synthetic_readme import write_readme
from fusiondx.datasets._synthetic_text import findings_text, make_reports
from fusiondx.datasets._synthetic_variants import check_uninformative, make_source, sources
from fusiondx.errors import ConfigError

__all__ = ["MANIFEST_COLUMNS", "make_cohort", "oracle_aurocs", "presence_auroc"]

MANIFEST_COLUMNS: tuple[str, ...] = (
    "case_id",
    "patient_id",
    "site",
    "sex",
    "age",
    "label",
    "subtype",
    "findings",
    "image",
    "ecg",
    "report",
    *LAB_COLUMNS,
    "smoker",
    "lesion_box",
    "mask",
    "findings_text",
    "time_to_event",
    "event",
)


def _check_args(
    n_cases: int,
    image_size: int,
    image_format: str,
    signal_format: str,
    n_leads: int,
    signal_rate: int,
    signal_seconds: float,
    missing_rate: float,
    n_sites: int,
    presence_shortcut: float = 0.0,
    site_shift: float = 0.0,
) -> None:
    """Raise :class:`ConfigError` for arguments the generator cannot honour."""
    checks = [
        (n_cases >= 1, "n_cases must be at least 1", "pass n_cases=1 or more"),
        (image_size >= 16, f"image_size={image_size} is too small", "use image_size >= 16"),
        (
            image_format in ("png", "dicom"),
            f"unknown image_format '{image_format}'",
            "use 'png' or 'dicom'",
        ),
        (
            signal_format in ("wfdb", "npy"),
            f"unknown signal_format '{signal_format}'",
            "use 'wfdb' or 'npy'",
        ),
        (
            1 <= n_leads <= len(ecg.LEAD_ORDER),
            f"n_leads={n_leads} is out of range",
            f"use 1 to {len(ecg.LEAD_ORDER)} leads",
        ),
        (
            signal_rate >= 50,
            f"signal_rate={signal_rate} Hz is too low to draw a QRS",
            "use signal_rate >= 50",
        ),
        (
            signal_seconds >= 2.0,
            f"signal_seconds={signal_seconds} is too short",
            "use at least 2 seconds",
        ),
        (
            0.0 <= missing_rate < 1.0,
            f"missing_rate={missing_rate} is not in [0, 1)",
            "use a probability such as 0.1",
        ),
        (1 <= n_sites <= 26, f"n_sites={n_sites} is out of range", "use 1 to 26 sites"),
        (
            0.0 <= presence_shortcut < 1.0,
            f"presence_shortcut={presence_shortcut} is not in [0, 1)",
            "use 0 (off) or a strength such as 0.6",
        ),
        (
            0.0 <= site_shift <= 3.0,
            f"site_shift={site_shift} is not in [0, 3]",
            "use 0 (off) or a strength such as 1.0",
        ),
    ]
    for ok, what, fix in checks:
        if not ok:
            raise ConfigError(what, fix=fix)


def _ids(lat: Latent) -> tuple[list[str], list[str]]:
    """Case ids in row order, patient ids numbered by first appearance."""
    width = max(5, len(str(len(lat))))
    case_ids = [f"case_{i + 1:0{width}d}" for i in range(len(lat))]
    _, first = np.unique(lat.patient, return_index=True)
    order = np.empty(len(first), dtype=int)
    order[np.argsort(first)] = np.arange(len(first))
    patient_ids = [f"pat_{order[p] + 1:0{width}d}" for p in lat.patient]
    return case_ids, patient_ids


def _finding_cells(lat: Latent) -> list[str]:
    """``;``-joined findings per case, the literal ``none`` when there are none."""
    names = np.array(FINDINGS)
    return [";".join(names[row]) or "none" for row in lat.findings]


def oracle_aurocs(
    manifest: str | Path, *, folds: int = 5, seed: int = 0, npy_rate: float = 100.0
) -> dict[str, float]:
    """Cross-validated oracle AUROC per modality and fused (see ``docs/cohort.md``).

    Thin wrapper so that importing this module does not import scikit-learn.

    Args:
        manifest: path of a manifest written by :func:`make_cohort`.
        folds: number of cross-validation folds (grouped by patient).
        seed: seed of the fold assignment.
        npy_rate: sampling rate to assume for ``.npy`` signals (they do not store one).

    Returns:
        ``{"image", "ecg", "report", "labs", "fused"}`` -> AUROC.
    """
    from fusiondx.datasets._synthetic_oracle import oracle_aurocs as _oracle

    return _oracle(manifest, folds=folds, seed=seed, npy_rate=npy_rate)


def presence_auroc(manifest: str | Path, *, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated AUROC of a logistic regression on presence indicators only.

    The features say only WHICH modalities (image, ECG, report, labs) and which lab cells are
    present, nothing of their content: near 0.5 on the default cohort, clearly above it with
    ``presence_shortcut`` (see ``docs/cohort.md``).
    """
    from fusiondx.datasets._synthetic_oracle import presence_auroc as _presence

    return _presence(manifest, folds=folds, seed=seed)


def make_cohort(
    out_dir: str | Path,
    *,
    n_cases: int = 2000,
    seed: int = 0,
    image_size: int = 64,
    image_format: str = "png",
    signal_format: str = "wfdb",
    n_leads: int = 3,
    signal_rate: int = 100,
    signal_seconds: float = 10.0,
    missing_rate: float = 0.1,
    n_sites: int = 3,
    presence_shortcut: float = 0.0,
    uninformative: Sequence[str] = (),
    site_shift: float = 0.0,
    progress: bool = False,
) -> Path:
    """Write a synthetic multimodal cohort and its manifest to ``out_dir``.

    Files already in ``out_dir`` with the same names are overwritten; other files are left alone.
    The same arguments always give a byte-identical manifest and identical pixel/sample arrays.

    Args:
        out_dir: directory to write into (created if needed).
        n_cases: number of cases (manifest rows).
        seed: seed of the single ``numpy.random.default_rng`` everything is drawn from.
        image_size: side of the square images in pixels.
        image_format: ``"png"`` (uint8) or ``"dicom"`` (int16 with rescale and window).
        signal_format: ``"wfdb"`` (``.hea`` + ``.dat``, format 16, mV) or ``"npy"``
            (float32, shape (leads, samples), mV).
        n_leads: number of ECG leads (1-12), named I, II, V2, III, aVR, ... in that order.
        signal_rate: ECG sampling rate in Hz.
        signal_seconds: ECG duration in seconds.
        missing_rate: probability that each of image, ECG, report and labs is missing.
        n_sites: number of acquisition sites (``site_A`` ...), each with its own image look.
        presence_shortcut: strength S in [0, 1) of a planted presence shortcut: the report and
            labs (and, within the labs, troponin and BNP) go missing more often for healthy
            cases and less often for diseased ones. 0 (default): missingness ignores the label.
        uninformative: modalities (from ``image``, ``ecg``, ``report``, ``labs``) rendered from
            an independently drawn case instead of the case itself, so they carry no
            information about its label. Age and sex come with the labs. The ground-truth
            columns (label ... survival, lesion box and mask) stay the case's own.
        site_shift: strength S in [0, 3] of a planted shift between sites: site k of n
            acquires with strength ``S * k / (n - 1)`` (``site_A`` unchanged, the last site the
            full S): a scanner contrast curve, a higher ECG gain that saturates, and reports in
            the site's own vocabulary (:mod:`fusiondx.datasets._synthetic_sites`). 0 (default):
            the cohort is byte for byte the one without this option.
        progress: show rich progress bars.

    Returns:
        Path of ``out_dir/manifest.csv``.

    Raises:
        ConfigError: if an argument is out of range.
    """
    _check_args(
        n_cases,
        image_size,
        image_format,
        signal_format,
        n_leads,
        signal_rate,
        signal_seconds,
        missing_rate,
        n_sites,
        presence_shortcut,
        site_shift,
    )
    uninf = check_uninformative(uninformative)
    out = Path(out_dir)
    for sub in ("images", "masks", "signals"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    # Independent streams per part, so e.g. the image format never changes the ECGs.
    root = np.random.default_rng(seed)
    r_lat, r_miss, r_img, r_ecg, r_txt, r_lab, r_surv = root.spawn(7)
    lat = draw_latent(r_lat, n_cases, n_sites)
    missing = draw_missing(r_miss, n_cases, missing_rate, lat.disease, presence_shortcut)
    has = {m: ~missing[:, k] for k, m in enumerate(MODALITIES)}
    case_ids, patient_ids = _ids(lat)
    own = make_source(lat, r_img, r_ecg, r_txt, r_lab)
    src = sources(own, root, uninf, n_sites)  # uninformative modalities: an independent case
    demo = src["labs"].lat  # age and sex travel with the labs, which are rendered from them
    opac_loc = img.lung_zone(own.iparams.opac_xy[:, 0])
    nod_loc = img.lung_zone(own.iparams.nod_xy)
    reports = make_reports(src["report"].rngs["report"], src["report"].lat, src["report"].locs)
    # Drawn from no shared stream: with site_shift=0 nothing here runs and nothing else changes.
    strength = sites.site_strength(lat.site, n_sites, site_shift) if site_shift > 0 else None
    if strength is not None:
        reports = sites.shift_reports(reports, lat.site, strength, seed)
    labs = draw_labs(
        src["labs"].rngs["labs"], src["labs"].lat, disease=lat.disease, shortcut=presence_shortcut
    )
    time_to_event, event = draw_survival(r_surv, lat)
    images, masks, boxes = write_images(
        out,
        own.iparams,
        demo,
        has["image"],
        r_img,
        case_ids,
        patient_ids,
        image_size,
        image_format,
        seed,
        progress,
        pixels_from=src["image"] if "image" in uninf else None,
        contrast=strength,
    )
    signals = write_signals(
        out,
        src["ecg"].lat,
        has["ecg"],
        src["ecg"].rngs["ecg"],
        case_ids,
        signal_format,
        n_leads,
        signal_rate,
        signal_seconds,
        progress,
        gain=strength,
    )

    table = {
        "case_id": case_ids,
        "patient_id": patient_ids,
        "site": [f"site_{chr(65 + s)}" for s in lat.site],
        "sex": np.where(demo.male, "M", "F"),
        "age": demo.age,
        "label": np.where(lat.disease, "disease", "healthy"),
        "subtype": np.array(SUBTYPES)[lat.subtype],
        "findings": _finding_cells(lat),
        "image": images,
        "ecg": signals,
        "report": np.where(has["report"], reports, ""),
        **{c: np.where(has["labs"], labs[c], np.nan) for c in LAB_COLUMNS},
        "smoker": np.where(has["labs"], labs["smoker"], ""),
        "lesion_box": boxes,
        "mask": masks,
        "findings_text": [
            findings_text(lat.findings[i], float(lat.severity[i]), opac_loc[i], nod_loc[i])
            for i in range(n_cases)
        ],
        "time_to_event": time_to_event,
        "event": event,
    }
    frame = pd.DataFrame(table, columns=list(MANIFEST_COLUMNS))
    manifest = out / "manifest.csv"
    frame.to_csv(manifest, index=False, lineterminator="\n")
    write_readme(
        out / "README.md",
        frame,
        has,
        seed=seed,
        image_format=image_format,
        signal_format=signal_format,
        image_size=image_size,
        n_leads=n_leads,
        signal_rate=signal_rate,
        signal_seconds=signal_seconds,
        missing_rate=missing_rate,
        presence_shortcut=presence_shortcut,
        uninformative=uninf,
    )
    if site_shift > 0:
        with (out / "README.md").open("a", encoding="utf-8") as f:
            f.write(
                f"\nSite shift {site_shift:g}: site k of {n_sites} acquires with strength "
                f"{site_shift:g} * k / {max(n_sites - 1, 1)} (scanner contrast curve, ECG gain with "
                "saturation, site vocabulary in reports); site_A is unchanged.\n"
            )
    return manifest
