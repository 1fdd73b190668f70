"""Opt-in variants of the synthetic cohort for testing whether a study tells the truth.

- Uninformative modalities (``make_cohort(uninformative=...)``): the listed modalities are
  rendered from a second, independently drawn cohort, so they look like real cohort data but
  say nothing about the case's own label. This module builds the per-modality sources.
- The planted presence shortcut lives with the draws it changes
  (:func:`~fusiondx.datasets._synthetic_latent.draw_missing`,
  :func:`~fusiondx.datasets._synthetic_labs.draw_labs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fusiondx.datasets import _synthetic_image as img
from fusiondx.datasets._synthetic_latent import MODALITIES, Latent, draw_latent
from fusiondx.errors import ConfigError, did_you_mean


@dataclass
class Source:
    """What modalities are rendered from: a latent state, its image parameters and streams."""

    lat: Latent
    iparams: img.ImageParams
    locs: list[dict[str, str]]  # zone phrases of the image's lesions, for the report
    rngs: dict[str, np.random.Generator]  # modality -> generator


def make_source(
    lat: Latent,
    r_img: np.random.Generator,
    r_ecg: np.random.Generator,
    r_txt: np.random.Generator,
    r_lab: np.random.Generator,
) -> Source:
    """Draw the image parameters of ``lat`` (they also place the lesions a report names)."""
    iparams = img.draw_image_params(r_img, lat)
    opac_loc = img.lung_zone(iparams.opac_xy[:, 0])
    nod_loc = img.lung_zone(iparams.nod_xy)
    locs = [
        {"opacity": f" in the {a} zone", "nodule": f" in the {b} zone"}
        for a, b in zip(opac_loc, nod_loc, strict=True)
    ]
    return Source(
        lat, iparams, locs, {"image": r_img, "ecg": r_ecg, "report": r_txt, "labs": r_lab}
    )


def check_uninformative(names: str | Sequence[str]) -> tuple[str, ...]:
    """Validate ``uninformative`` names; return them in :data:`MODALITIES` order, once each.

    A single string is read as a comma-separated list (``"ecg,report"``).

    Raises:
        ConfigError: for a name that is not a modality.
    """
    if isinstance(names, str):
        names = names.split(",")
    given = [str(n).strip() for n in names if str(n).strip()]
    for name in given:
        if name not in MODALITIES:
            raise ConfigError(
                f"unknown modality '{name}' in uninformative.{did_you_mean(name, MODALITIES)}",
                fix=f"use names from {', '.join(MODALITIES)}, e.g. "
                "uninformative=('ecg', 'report', 'labs')",
            )
    return tuple(m for m in MODALITIES if m in given)


def sources(
    own: Source, root: np.random.Generator, uninformative: tuple[str, ...], n_sites: int
) -> dict[str, Source]:
    """Modality -> the source it is rendered from: ``own``, or a shadow case if uninformative.

    The shadow cohort is a second :func:`draw_latent` of the same size from streams spawned
    from ``root`` (after the default ones, which are therefore untouched); case ``i``'s
    uninformative modalities all show shadow case ``i``, independent of case ``i``'s label.
    It reuses the cohort's case -> patient map, so both visits of a patient show the same
    other person (sex, smoking and body stay constant per patient, as in real data); its
    sites, demographics and disease states are drawn afresh.
    """
    src = dict.fromkeys(MODALITIES, own)
    if uninformative:
        s_lat, s_img, s_ecg, s_txt, s_lab = root.spawn(5)
        shadow_lat = draw_latent(s_lat, len(own.lat), n_sites, patient=own.lat.patient)
        shadow = make_source(shadow_lat, s_img, s_ecg, s_txt, s_lab)
        src.update(dict.fromkeys(uninformative, shadow))
    return src
