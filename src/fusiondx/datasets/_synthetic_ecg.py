"""Multi-lead ECG-like signals (mV) for the synthetic cohort.

Each beat is a sum of Gaussian bumps (P, Q, R, S, ST plateau, T) placed at beat times drawn from
the heart rate and its irregularity; leads differ by a fixed amplitude table. Noise: baseline
wander, muscle (white) noise and mains hum where the sampling rate can represent it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusiondx.datasets._synthetic_latent import Latent

LEAD_ORDER: tuple[str, ...] = (
    "I",
    "II",
    "V2",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V3",
    "V4",
    "V5",
    "V6",
)
# Relative amplitude of (P, Q, R, S, ST, T) per lead; the ST column carries the lead's sign
# of an ST shift (reciprocal changes show as the opposite sign).
_LEAD_GAIN = {
    "I": (0.6, 0.5, 0.7, 0.3, 0.8, 0.6),
    "II": (1.0, 0.6, 1.2, 0.4, 1.0, 1.0),
    "III": (0.5, 0.4, 0.6, 0.3, 0.6, 0.4),
    "aVR": (-0.8, -0.2, -0.9, -0.2, -0.7, -0.8),
    "aVL": (0.3, 0.5, 0.4, 0.4, -0.4, 0.3),
    "aVF": (0.8, 0.4, 0.9, 0.3, 0.8, 0.7),
    "V1": (0.4, 0.0, 0.3, 2.0, 0.5, -0.2),
    "V2": (0.5, 0.0, 0.6, 1.8, 1.3, 1.2),
    "V3": (0.5, 0.2, 1.0, 1.2, 1.2, 1.1),
    "V4": (0.5, 0.3, 1.5, 0.8, 1.0, 1.0),
    "V5": (0.5, 0.4, 1.4, 0.4, 0.8, 0.9),
    "V6": (0.5, 0.4, 1.1, 0.3, 0.6, 0.7),
}
# Wave (offset from R peak in s, width in s, amplitude in mV); S-T timing scales with RR below.
_WAVES = np.array(
    [
        [-0.16, 0.022, 0.12],  # P
        [-0.030, 0.009, -0.10],  # Q
        [0.0, 0.011, 1.00],  # R
        [0.030, 0.010, -0.25],  # S
        [0.10, 0.035, 0.0],  # ST plateau: amplitude set per case
        [0.26, 0.045, 0.30],  # T
    ]
)


@dataclass
class EcgParams:
    """Per-case ECG parameters (arrays over cases)."""

    hr: np.ndarray  # beats per minute during the recording
    rr_cv: np.ndarray  # beat-to-beat variability (coefficient of variation)
    ectopic: np.ndarray  # probability that a beat comes early
    p_amp: np.ndarray  # P-wave scale (0 in atrial fibrillation)
    st: np.ndarray  # ST shift in mV (signed)
    amp: np.ndarray  # overall amplitude (body habitus)
    qrs: np.ndarray  # QRS voltage factor (>1 with ventricular hypertrophy)
    wander: np.ndarray  # baseline wander amplitude, mV
    muscle: np.ndarray  # white-noise sd, mV
    mains: np.ndarray  # mains frequency (50 or 60 Hz)


def draw_ecg_params(rng: np.random.Generator, lat: Latent) -> EcgParams:
    """Draw ECG parameters from the latent state.

    Cardiac involvement raises the rate, arrhythmia adds RR irregularity and removes P waves,
    ST change shifts the ST segment. Healthy look-alikes: exercise tachycardia, benign ectopy
    and early repolarisation.
    """
    n = len(lat)
    sev = lat.severity
    arr = lat.findings[:, 3]
    stc = lat.findings[:, 4]
    exercise = ~lat.disease & (rng.random(n) < 0.18)
    benign_ectopy = rng.random(n) < 0.07
    early_repol = rng.random(n) < 0.07
    st_sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    st = (
        stc * st_sign * (0.07 + 0.05 * sev)
        + early_repol * rng.uniform(0.02, 0.06, n)
        + rng.normal(0, 0.012, n)
    )
    return EcgParams(
        hr=np.clip(lat.hr_rest + exercise * rng.uniform(20, 45, n) + rng.normal(0, 6, n), 40, 170),
        rr_cv=np.where(arr, 0.10 + 0.08 * sev, 0.02) * rng.uniform(0.7, 1.3, n),
        ectopic=np.where(benign_ectopy, rng.uniform(0.05, 0.15, n), 0.0) + arr * 0.05,
        p_amp=np.where(arr & (rng.random(n) < 0.6), 0.0, 1.0),
        st=st,
        amp=rng.uniform(0.8, 1.2, n),
        qrs=1.0 + lat.findings[:, 2] * (0.4 + 0.3 * sev),
        wander=rng.uniform(0.05, 0.3, n),
        muscle=rng.uniform(0.01, 0.05, n),
        mains=np.where(lat.site % 2 == 0, 50.0, 60.0),
    )


def lead_names(n_leads: int) -> list[str]:
    """Names of the first ``n_leads`` leads in the preferred order (I, II, V2, ...)."""
    return list(LEAD_ORDER[:n_leads])


def _beat_times(
    rng: np.random.Generator, hr: float, rr_cv: float, ectopic: float, seconds: float
) -> np.ndarray:
    """R-peak times covering ``[0, seconds]`` plus a margin so edge beats are complete."""
    rr_mean = 60.0 / hr
    n_max = int(np.ceil((seconds + 2.0) / (rr_mean * 0.5))) + 2
    rr = rr_mean * (1 + rr_cv * rng.standard_normal(n_max))
    early = rng.random(n_max) < ectopic
    rr = np.where(early, rr * 0.65, rr)
    rr = np.clip(rr, 0.25, 2.5)
    t = -1.0 + rng.uniform(0, rr_mean) + np.cumsum(rr)
    return t[t < seconds + 1.0]


def synthesize(
    p: EcgParams, i: int, rng: np.random.Generator, n_leads: int, rate: int, seconds: float
) -> np.ndarray:
    """Signal of case ``i`` as float32 (n_leads, n_samples) in mV."""
    n_samples = int(round(rate * seconds))
    t = np.arange(n_samples) / rate
    beats = _beat_times(rng, p.hr[i], p.rr_cv[i], p.ectopic[i], seconds)
    # QT shortens with rate (Bazett-like): stretch post-R offsets by sqrt(RR).
    stretch = np.sqrt(60.0 / p.hr[i])
    offs = np.where(_WAVES[:, 0] > 0.05, _WAVES[:, 0] * stretch, _WAVES[:, 0])
    amps = _WAVES[:, 2].copy()
    amps[0] *= p.p_amp[i]
    amps[4] = p.st[i]
    amps[1:4] *= p.qrs[i]
    # (waves, beats, samples) -> (waves, samples): Gaussian bumps summed over beats.
    d = t[None, None, :] - (beats[None, :, None] + offs[:, None, None])
    waves = np.exp(-0.5 * (d / _WAVES[:, 1, None, None]) ** 2).sum(axis=1) * amps[:, None]
    gains = np.array([_LEAD_GAIN[name] for name in lead_names(n_leads)])
    gains = gains * rng.uniform(0.8, 1.2, gains.shape)  # lead placement varies per recording
    sig = p.amp[i] * gains @ waves
    sig += _noise(p, i, rng, t, n_leads, rate)
    return sig.astype(np.float32)


def _noise(
    p: EcgParams, i: int, rng: np.random.Generator, t: np.ndarray, n_leads: int, rate: int
) -> np.ndarray:
    """Baseline wander + muscle noise + mains hum (only if below the Nyquist limit)."""
    f_w = rng.uniform(0.1, 0.4, (n_leads, 1))
    ph = rng.uniform(0, 2 * np.pi, (n_leads, 2))
    out = p.wander[i] * np.sin(2 * np.pi * f_w * t + ph[:, :1])
    out += p.muscle[i] * rng.standard_normal((n_leads, len(t)))
    if rate > 2.5 * p.mains[i]:
        out += 0.02 * np.sin(2 * np.pi * p.mains[i] * t + ph[:, 1:])
    return out
