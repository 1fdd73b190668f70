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
  site's own wording (``shadowing`` or ``clouding`` for opacity, ``Nil`` or ``Absent`` for No,
  ...); neighbouring sites use different words, so a held-out site's are unseen in training.

With ``S = 0`` nothing here runs and no random number is drawn, so the cohort is byte for byte
the one without the option.
"""

from __future__ import annotations

import re

import numpy as np

# Each shifted site's house style: a term -> that site's wording (whole words, case kept).
# Site k >= 1 uses column (k - 1) % 2, so neighbouring sites never share a wording and a
# held-out site's words are unseen in training whichever other sites train.
_DIALECTS = {
    "opacity": ("shadowing", "clouding"),
    "opacities": ("shadowings", "cloudings"),
    "consolidation": ("airspace shadowing", "alveolar filling"),
    "infiltrate": ("haziness", "infiltration"),
    "nodule": ("coin lesion", "nodulus"),
    "nodular": ("coin-like", "rounded"),
    "density": ("lesion", "mass"),
    "cardiomegaly": ("cardiac prominence", "big heart"),
    "enlarged": ("prominent", "increased"),
    "enlargement": ("prominence", "increase"),
    "arrhythmia": ("dysrhythmia", "ectopy"),
    "fibrillation": ("fib", "flutter-fib"),
    "irregular": ("erratic", "chaotic"),
    "rhythm": ("cadence", "tracing"),
    "depression": ("sagging", "dip"),
    "elevation": ("lift", "raise"),
    "no": ("nil", "absent"),
    "possible": ("query", "suspected"),
    "evidence": ("signs", "features"),
    "clear": ("unremarkable", "clean"),
    "normal": ("within limits", "satisfactory"),
}
_WORDS = re.compile(r"\b(" + "|".join(sorted(_DIALECTS, key=len, reverse=True)) + r")\b", re.I)
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


def shift_reports(
    reports: list[str], site: np.ndarray, strength: np.ndarray, seed: int
) -> list[str]:
    """Reports in their site's wording: every clinical term replaced with probability
    ``min(1, strength)`` by the site's own word (a generator of its own, so no other part of
    the cohort changes)."""
    rng = np.random.default_rng([seed, 0x5173])
    out = []
    for text, k, s in zip(
        reports, np.asarray(site), np.asarray(strength, dtype=float), strict=True
    ):
        p = min(1.0, s)
        if p <= 0 or not text:
            out.append(text)
            continue

        def local(m: re.Match[str], p: float = p, col: int = (int(k) - 1) % 2) -> str:
            word = m.group(0)
            if rng.random() >= p:
                return word
            new = _DIALECTS[word.lower()][col]
            return new[0].upper() + new[1:] if word[0].isupper() else new

        out.append(_WORDS.sub(local, text))
    return out
