"""Chest-radiograph-like images for the synthetic cohort, rendered in vectorised batches.

Shapes are analytic functions of *canonical* coordinates ``(u, v)`` in [-1, 1] (u to the right,
v down). Each case has a small random rotation, scale and shift; every pixel is mapped back to
canonical coordinates and the shapes are evaluated there, so the lesion mask is rendered in
exactly the same frame as the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from fusiondx.datasets._synthetic_latent import Latent

# (gain, offset, noise sd) per site; site k >= 8 reuses k % 8 with a slowly drifting gain.
_SITE_TABLE = np.array(
    [
        [1.00, 0.00, 0.035],
        [0.80, 0.08, 0.055],
        [1.22, -0.07, 0.050],
        [0.90, 0.05, 0.030],
        [1.10, -0.03, 0.065],
        [0.80, -0.05, 0.045],
        [1.15, 0.06, 0.060],
        [0.95, 0.02, 0.055],
    ]
)
# Canonical layout of the anatomy.
LUNG_CENTRES = ((-0.40, -0.05), (0.40, -0.05))
LUNG_RADII = (0.26, 0.55)
HEART_CENTRE = (0.08, 0.27)
HEART_HALF_HEIGHT = 0.22
_MAX_BLOBS = 3


def site_params(site: np.ndarray) -> np.ndarray:
    """Return (gain, offset, noise) rows for each site index."""
    table = _SITE_TABLE[site % len(_SITE_TABLE)].copy()
    table[:, 0] *= 1.0 + 0.03 * (site // len(_SITE_TABLE))
    return table


@dataclass
class ImageParams:
    """Per-case rendering parameters (arrays over cases)."""

    theta: np.ndarray
    scale: np.ndarray
    shift: np.ndarray  # (n, 2) canonical units
    lung_scale: np.ndarray
    heart_w: np.ndarray
    opac_amp: np.ndarray  # 0 when no opacity
    opac_xy: np.ndarray  # (n, _MAX_BLOBS, 2)
    opac_sigma: np.ndarray  # (n, _MAX_BLOBS), 0 for unused blob slots
    nod_amp: np.ndarray  # 0 when no nodule
    nod_xy: np.ndarray  # (n, 2)
    nod_r: np.ndarray
    benign_amp: np.ndarray  # benign look-alike blob, 0 when absent
    benign_xy: np.ndarray
    benign_r: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    noise: np.ndarray


def _point_in_lung(
    rng: np.random.Generator, side: np.ndarray, lung_scale: np.ndarray, reach: float
) -> np.ndarray:
    """Random points inside a lung (side 0 = image left), at most ``reach`` of its radius."""
    n = len(side)
    centre = np.array(LUNG_CENTRES)[side] * lung_scale[:, None]
    rho = reach * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    radii = np.array(LUNG_RADII) * lung_scale[:, None]
    return centre + np.stack([rho * np.cos(phi), rho * np.sin(phi)], axis=1) * radii


def draw_image_params(rng: np.random.Generator, lat: Latent) -> ImageParams:
    """Draw rendering parameters for every case from the latent state."""
    n = len(lat)
    sev = lat.severity
    has_opac = lat.findings[:, 0]
    has_nod = lat.findings[:, 1]
    cardio = lat.findings[:, 2]
    opac_side = rng.integers(0, 2, n)
    opac_xy = np.stack(
        [_point_in_lung(rng, opac_side, lat.lung_scale, 0.6) for _ in range(_MAX_BLOBS)], axis=1
    )
    n_blobs = rng.integers(1, _MAX_BLOBS + 1, n)
    opac_sigma = rng.uniform(0.06, 0.11, (n, _MAX_BLOBS)) * (
        np.arange(_MAX_BLOBS) < n_blobs[:, None]
    )
    benign = rng.random(n) < 0.25  # look-alike blobs in any case keep images imperfect
    site = site_params(lat.site)
    return ImageParams(
        theta=np.deg2rad(rng.uniform(-5, 5, n)),
        scale=rng.uniform(0.95, 1.05, n),
        shift=rng.uniform(-0.09, 0.09, (n, 2)),
        lung_scale=lat.lung_scale,
        heart_w=lat.heart_base + cardio * (0.035 + 0.03 * sev) + rng.normal(0, 0.012, n),
        opac_amp=has_opac * (0.15 + 0.08 * sev),
        opac_xy=opac_xy,
        opac_sigma=opac_sigma,
        nod_amp=has_nod * (0.25 + 0.08 * sev),
        nod_xy=_point_in_lung(rng, rng.integers(0, 2, n), lat.lung_scale, 0.6),
        nod_r=0.06 + 0.03 * sev,
        benign_amp=benign * rng.uniform(0.08, 0.22, n),
        benign_xy=_point_in_lung(rng, rng.integers(0, 2, n), lat.lung_scale, 0.7),
        benign_r=rng.uniform(0.05, 0.08, n),
        gain=site[:, 0] * rng.uniform(0.92, 1.08, n),
        offset=site[:, 1] + rng.normal(0, 0.03, n),
        noise=site[:, 2],
    )


Scalar = float | np.ndarray  # a number, or per-case values shaped (batch, 1, 1)


def _soft_ellipse(
    u: np.ndarray, v: np.ndarray, cu: Scalar, cv: Scalar, ru: Scalar, rv: Scalar, edge: float
) -> np.ndarray:
    """Membership in [0, 1] of an ellipse with a sigmoid edge ``edge`` (radius units) wide."""
    d = np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2)
    return expit((1.0 - d) / edge)


def _col(x: np.ndarray) -> np.ndarray:
    """Reshape per-case values to broadcast against (batch, H, W) arrays."""
    return np.asarray(x, dtype=np.float32)[:, None, None]


def _canonical_grid(p: ImageParams, sl: slice, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical coordinates of every pixel centre for the cases in ``sl``."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    x = g[None, None, :] - _col(p.shift[sl, 0])
    y = g[None, :, None] - _col(p.shift[sl, 1])
    c, s, k = _col(np.cos(p.theta[sl])), _col(np.sin(p.theta[sl])), _col(p.scale[sl])
    return (c * x + s * y) / k, (-s * x + c * y) / k


def to_pixel(p: ImageParams, idx: np.ndarray, xy: np.ndarray, size: int) -> np.ndarray:
    """Integer pixel (col, row) of canonical points ``xy`` (n, 2) for cases ``idx``."""
    c, s = np.cos(p.theta[idx]), np.sin(p.theta[idx])
    k = p.scale[idx]
    x = k * (c * xy[:, 0] - s * xy[:, 1]) + p.shift[idx, 0]
    y = k * (s * xy[:, 0] + c * xy[:, 1]) + p.shift[idx, 1]
    pix = np.floor((np.stack([x, y], axis=1) + 1) / 2 * size).astype(int)
    return np.clip(pix, 0, size - 1)


def render(
    p: ImageParams, sl: slice, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Render the cases in ``sl``.

    Returns:
        ``(image, mask)``: float32 images in [0, 1] and boolean lesion masks, (batch, H, W).
    """
    u, v = _canonical_grid(p, sl, size)
    ls = _col(p.lung_scale[sl])
    lungs = sum(
        _soft_ellipse(u, v, cx * ls, cy * ls, LUNG_RADII[0] * ls, LUNG_RADII[1] * ls, 0.06)
        for cx, cy in LUNG_CENTRES
    )
    img = 0.06 + (0.52 - 0.06) * _soft_ellipse(u, v, 0.0, 0.05, 0.9, 0.97, 0.04)
    img += (0.20 - img) * lungs
    medi = _soft_ellipse(u, v, 0.0, -0.25, 0.085, 0.62, 0.08)
    img += (0.62 - img) * medi
    heart = _soft_ellipse(
        u, v, HEART_CENTRE[0], HEART_CENTRE[1], _col(p.heart_w[sl]), HEART_HALF_HEIGHT, 0.05
    )
    img += (0.80 - img) * heart
    # Opacities: a sum of Gaussian patches confined to the lungs.
    opac = np.zeros_like(u)
    for j in range(_MAX_BLOBS):
        sig = np.maximum(_col(p.opac_sigma[sl, j]), 1e-6)
        r2 = (u - _col(p.opac_xy[sl, j, 0])) ** 2 + (v - _col(p.opac_xy[sl, j, 1])) ** 2
        opac += np.where(sig > 1e-5, np.exp(-r2 / (2 * sig**2)), 0.0)
    opac = np.minimum(opac, 1.0) * lungs
    img += _col(p.opac_amp[sl]) * opac
    nod = _soft_ellipse(
        u,
        v,
        _col(p.nod_xy[sl, 0]),
        _col(p.nod_xy[sl, 1]),
        _col(p.nod_r[sl]),
        _col(p.nod_r[sl]),
        0.12,
    )
    img += _col(p.nod_amp[sl]) * nod
    ben = _soft_ellipse(
        u,
        v,
        _col(p.benign_xy[sl, 0]),
        _col(p.benign_xy[sl, 1]),
        _col(p.benign_r[sl]),
        _col(p.benign_r[sl]),
        0.15,
    )
    img += _col(p.benign_amp[sl]) * ben
    # Site-dependent contrast, brightness and noise.
    img = _col(p.gain[sl]) * (img - 0.5) + 0.5 + _col(p.offset[sl])
    img += _col(p.noise[sl]) * rng.standard_normal(img.shape, dtype=np.float32)
    mask = ((opac > 0.5) & (_col(p.opac_amp[sl]) > 0)) | ((nod > 0.5) & (_col(p.nod_amp[sl]) > 0))
    _mark_lesion_centres(p, sl, size, mask)
    return np.clip(img, 0.0, 1.0).astype(np.float32), mask


def _mark_lesion_centres(p: ImageParams, sl: slice, size: int, mask: np.ndarray) -> None:
    """Make sure each lesion owns at least its centre pixel, even in very small images."""
    idx = np.arange(sl.start, sl.stop)
    for has, xy in ((p.opac_amp[idx] > 0, p.opac_xy[idx, 0]), (p.nod_amp[idx] > 0, p.nod_xy[idx])):
        rows = np.flatnonzero(has)
        pix = to_pixel(p, idx[rows], xy[rows], size)
        mask[rows, pix[:, 1], pix[:, 0]] = True


def lesion_box(mask: np.ndarray) -> str:
    """``"x0 y0 x1 y1"`` bounding the non-zero pixels (x1, y1 exclusive), or ``""``."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return ""
    return f"{xs.min()} {ys.min()} {xs.max() + 1} {ys.max() + 1}"


def lung_zone(xy: np.ndarray) -> list[str]:
    """Radiological location of canonical points: the patient's right is the image left."""
    side = np.where(xy[:, 0] < 0, "right", "left")
    zone = np.where(xy[:, 1] < -0.2, "upper", np.where(xy[:, 1] > 0.2, "lower", "mid"))
    return [f"{s} {z}" for s, z in zip(side, zone, strict=True)]
