"""The synthetic cohort's image and ECG files: render every case, write those that have one.

Images (PNG or DICOM, with lesion mask and box) are rendered in vectorised batches of
``_CHUNK`` cases; each ECG is synthesised from its own child generator, so a case's signal does
not depend on which other cases are missing. Paths are relative to the cohort folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusiondx.datasets import _synthetic_ecg as ecg
from fusiondx.datasets import _synthetic_image as img
from fusiondx.datasets import _synthetic_io as io
from fusiondx.datasets import _synthetic_sites as sites
from fusiondx.datasets._adapter import track
from fusiondx.datasets._synthetic_latent import Latent
from fusiondx.datasets._synthetic_variants import Source

_CHUNK = 256  # images rendered per vectorised batch: bounds memory for large image sizes


def write_images(
    out: Path,
    p: img.ImageParams,
    demo: Latent,
    has_image: np.ndarray,
    rng: np.random.Generator,
    case_ids: list[str],
    patient_ids: list[str],
    size: int,
    fmt: str,
    seed: int,
    progress: bool,
    pixels_from: Source | None = None,
    contrast: np.ndarray | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """Render every case in batches and write images and masks of cases that have an image.

    ``p`` and ``rng`` render the case's own lesions (mask and box); the pixels come from them
    too unless ``pixels_from`` (an uninformative image) is given. ``contrast`` (per case) is
    the site shift's strength (:func:`~fusiondx.datasets._synthetic_sites.shift_pixels`). ``demo`` holds the sex and
    age written into DICOM headers (those of the manifest row).

    Returns:
        ``(image_paths, mask_paths, boxes)`` per case, empty strings where absent.
    """
    n = len(case_ids)
    paths, masks, boxes = [""] * n, [""] * n, [""] * n
    starts = range(0, n, _CHUNK)
    for start in track(starts, len(starts), "images", progress):
        sl = slice(start, min(start + _CHUNK, n))
        pixels, lesion = img.render(p, sl, size, rng)
        if pixels_from is not None:
            pixels, _ = img.render(pixels_from.iparams, sl, size, pixels_from.rngs["image"])
        if contrast is not None:
            pixels = sites.shift_pixels(pixels, contrast[sl])
        for k, i in enumerate(range(sl.start, sl.stop)):
            if not has_image[i]:
                continue
            cid = case_ids[i]
            if fmt == "png":
                paths[i] = f"images/{cid}.png"
                io.write_png(out / paths[i], io.to_uint8(pixels[k]))
            else:
                paths[i] = f"images/{cid}.dcm"
                io.write_dicom(
                    out / paths[i],
                    pixels[k],
                    case_id=cid,
                    patient_id=patient_ids[i],
                    sex="M" if demo.male[i] else "F",
                    age=int(demo.age[i]),
                    seed=seed,
                )
            if lesion[k].any():
                masks[i] = f"masks/{cid}.png"
                io.write_png(out / masks[i], lesion[k].astype(np.uint8) * 255)
                boxes[i] = img.lesion_box(lesion[k])
    return paths, masks, boxes


def write_signals(
    out: Path,
    lat: Latent,
    has_ecg: np.ndarray,
    rng: np.random.Generator,
    case_ids: list[str],
    fmt: str,
    n_leads: int,
    rate: int,
    seconds: float,
    progress: bool,
    gain: np.ndarray | None = None,
) -> list[str]:
    """Synthesise and write the ECG of every case that has one; return relative paths.

    ``gain`` (per case) is the site shift's strength
    (:func:`~fusiondx.datasets._synthetic_sites.shift_signal`)."""
    params = ecg.draw_ecg_params(rng, lat)
    # One child generator per case: a case's signal does not depend on which others are missing.
    case_rngs = rng.spawn(len(lat))
    leads = ecg.lead_names(n_leads)
    paths = [""] * len(lat)
    for i in track(range(len(lat)), len(lat), "signals", progress):
        if not has_ecg[i]:
            continue
        signal = ecg.synthesize(params, i, case_rngs[i], n_leads, rate, seconds)
        if gain is not None and gain[i] > 0:
            signal = sites.shift_signal(signal, gain[i])
        if fmt == "wfdb":
            paths[i] = f"signals/{case_ids[i]}.hea"
            io.write_wfdb(out / "signals", case_ids[i], signal, rate, leads)
        else:
            paths[i] = f"signals/{case_ids[i]}.npy"
            io.write_npy(out / paths[i], signal)
    return paths
