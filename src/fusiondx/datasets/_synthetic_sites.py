"""A controllable shift between the synthetic cohort's sites (``make_cohort(site_shift=S)``).

Each site acquires differently, and more so the further it is from ``site_A``: site k of n
has strength ``S * k / (n - 1)`` (``site_A`` none, the last site the full ``S``). The three
changes are chosen to survive FusionDx's default per-image and per-lead normalisation, which a
plain brightness or amplitude scale would not:

- **scanner contrast**: pixel values go through a gamma curve ``x ** (1 + 1.5 s)`` (midtones
  darker, the lungs' texture compressed);
- **ECG gain**: the amplifier gain rises to ``1 + 2 s`` and saturates softly at +-1 mV
  (``tanh``), so large deflections are clipped;
- **report vocabulary**: each clinical term is replaced with probability ``min(1, s)`` by the
  site's own wording (``shadowing`` for opacity, ``Nil`` for No, ...), words the other sites
  never use.

With ``S = 0`` nothing here runs and no random number is drawn, so the cohort is byte for byte
the one without the option.
"""

from __future__ import annotations

import re

import numpy as np

# The shifted sites' house style: a term -> its local wording (whole words, case kept).
_DIALECT = {
    "opacity": "shadowing",
    "opacities": "shadowings",
    "consolidation": "airspace shadowing",
    "infiltrate": "haziness",
    "nodule": "coin lesion",
    "nodular": "coin-like",
    "density": "lesion",
    "cardiomegaly": "cardiac prominence",
    "enlarged": "prominent",
    "enlargement": "prominence",
    "arrhythmia": "dysrhythmia",
    "fibrillation": "fib",
    "irregular": "erratic",
    "rhythm": "cadence",
    "depression": "sagging",
    "elevation": "lift",
    "no": "nil",
    "possible": "query",
    "evidence": "signs",
    "clear": "unremarkable",
    "normal": "within limits",
}
_WORDS = re.compile(r"\b(" + "|".join(sorted(_DIALECT, key=len, reverse=True)) + r")\b", re.I)
_GAMMA = 1.5
_GAIN = 2.0
_SATURATION_MV = 1.0


def site_strength(site: np.ndarray, n_sites: int, shift: float) -> np.ndarray:
    """Each case's shift strength: 0 at ``site_A``, rising linearly to ``shift`` at the last."""
    site = np.asarray(site, dtype=float)
    if n_sites < 2:
        return np.zeros_like(site)
    return shift * site / (n_sites - 1)


def shift_pixels(pixels: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Images (k, H, W) in [0, 1] through each case's contrast curve; cases of strength 0
    are returned untouched."""
    strength = np.asarray(strength, dtype=float)
    out = pixels.copy()
    on = strength > 0
    gamma = (1.0 + _GAMMA * strength[on])[:, None, None]
    out[on] = np.clip(pixels[on], 0.0, 1.0) ** gamma
    return out


def shift_signal(signal: np.ndarray, strength: float) -> np.ndarray:
    """One ECG (leads, samples) in mV, recorded at a higher gain that saturates softly."""
    gain = 1.0 + _GAIN * float(strength)
    return (_SATURATION_MV * np.tanh(gain * signal / _SATURATION_MV)).astype(signal.dtype)


def shift_reports(reports: list[str], strength: np.ndarray, seed: int) -> list[str]:
    """Reports in their site's wording: every clinical term replaced with probability
    ``min(1, strength)`` (a generator of its own, so no other part of the cohort changes)."""
    rng = np.random.default_rng([seed, 0x5173])
    out = []
    for text, s in zip(reports, np.asarray(strength, dtype=float), strict=True):
        p = min(1.0, s)
        if p <= 0 or not text:
            out.append(text)
            continue

        def local(m: re.Match[str], p: float = p) -> str:
            word = m.group(0)
            if rng.random() >= p:
                return word
            new = _DIALECT[word.lower()]
            return new[0].upper() + new[1:] if word[0].isupper() else new

        out.append(_WORDS.sub(local, text))
    return out
