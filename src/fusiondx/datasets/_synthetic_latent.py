"""Latent state of the synthetic cohort: patients, demographics, disease, findings, missingness.

Everything observable (images, ECGs, reports, labs) is rendered from the arrays drawn here, so
this module is the single source of truth for the ground-truth columns of the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINDINGS: tuple[str, ...] = ("opacity", "nodule", "cardiomegaly", "arrhythmia", "st_change")
SUBTYPES: tuple[str, ...] = ("none", "pulmonary", "cardiac", "mixed")
SMOKER: tuple[str, ...] = ("never", "former", "current")
MODALITIES: tuple[str, ...] = ("image", "ecg", "report", "labs")

# Fraction of patients that contribute a second case (a follow-up visit).
REPEAT_FRACTION = 0.10
# Probability that a follow-up visit keeps the disease state of the first visit.
FOLLOW_UP_KEEPS_STATE = 0.75
# Intercept of the disease logit, chosen so that prevalence comes out near 40 %.
_DISEASE_INTERCEPT = -0.75
# Planted presence shortcut (``make_cohort(presence_shortcut=S)``): these modalities are
# "ordered" when disease is suspected, so they are missing more often for healthy cases.
SHORTCUT_MODALITIES: tuple[str, ...] = ("report", "labs")
# Share of the way from the base missing rate to 1 a healthy case moves at S = 1.
SHORTCUT_LIFT = 1.0 / 3.0


@dataclass
class Latent:
    """Per-case latent variables (all arrays have length ``n_cases``).

    Attributes:
        patient: patient index (0-based) of each case.
        site: site index (0-based).
        male: True for sex M.
        age: age in whole years.
        smoker: index into :data:`SMOKER`.
        disease: binary disease status.
        subtype: index into :data:`SUBTYPES` (0 exactly when not diseased).
        severity: 0 for healthy cases, in (0.15, 1) for diseased ones.
        findings: boolean matrix (n_cases, 5), columns in :data:`FINDINGS` order.
        heart_base: patient-specific heart half-width (canonical image units).
        lung_scale: patient-specific lung size factor.
        hr_rest: resting heart rate in beats per minute (drives ECG and vitals).
    """

    patient: np.ndarray
    site: np.ndarray
    male: np.ndarray
    age: np.ndarray
    smoker: np.ndarray
    disease: np.ndarray
    subtype: np.ndarray
    severity: np.ndarray
    findings: np.ndarray
    heart_base: np.ndarray
    lung_scale: np.ndarray
    hr_rest: np.ndarray

    @property
    def pulmonary(self) -> np.ndarray:
        """True where the lungs are involved (pulmonary or mixed subtype)."""
        return (self.subtype == 1) | (self.subtype == 3)

    @property
    def cardiac(self) -> np.ndarray:
        """True where the heart is involved (cardiac or mixed subtype)."""
        return (self.subtype == 2) | (self.subtype == 3)

    def __len__(self) -> int:
        return len(self.patient)


def _case_to_patient(rng: np.random.Generator, n_cases: int) -> np.ndarray:
    """Map each case to a patient; ~10 % of patients get two cases, rows in random order."""
    n_patients = max(1, int(round(n_cases / (1.0 + REPEAT_FRACTION))))
    n_repeat = n_cases - n_patients
    repeated = rng.choice(n_patients, size=n_repeat, replace=False)
    patient = np.concatenate([np.arange(n_patients), np.sort(repeated)])
    # Shuffle so that the two visits of a patient are not adjacent rows.
    return patient[rng.permutation(n_cases)]


def _draw_disease(
    rng: np.random.Generator, age: np.ndarray, smoker: np.ndarray, site: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disease status (mildly driven by age, smoking, site), subtype and severity."""
    n = len(age)
    logit = (
        _DISEASE_INTERCEPT
        + 0.025 * (age - 58.0)
        + np.array([0.0, 0.3, 0.6])[smoker]
        + 0.25 * (site == 0)  # site_A is the referral centre: slightly sicker population
    )
    disease = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    # Subtype logits: smokers lean pulmonary, older patients lean cardiac.
    sub_logits = np.stack(
        [
            0.45 * (smoker == 2),
            0.02 * (age - 58.0),
            np.full(n, -0.9),
        ],
        axis=1,
    )
    probs = np.exp(sub_logits) / np.exp(sub_logits).sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    subtype = 1 + (u > np.cumsum(probs, axis=1)).sum(axis=1)
    subtype = np.where(disease, np.minimum(subtype, 3), 0)
    severity = np.where(disease, 0.15 + 0.85 * rng.beta(2.0, 2.0, n), 0.0)
    return disease, subtype, severity


def _draw_findings(rng: np.random.Generator, subtype: np.ndarray) -> np.ndarray:
    """Findings consistent with the subtype; every involved organ shows at least one."""
    n = len(subtype)
    pulm = (subtype == 1) | (subtype == 3)
    card = (subtype == 2) | (subtype == 3)
    rates = np.array([0.7, 0.4, 0.55, 0.45, 0.45])
    organ = np.stack([pulm, pulm, card, card, card], axis=1)
    found = (rng.random((n, 5)) < rates) & organ
    # Guarantee one finding per involved organ, picked at random among that organ's findings.
    pick_p = rng.integers(0, 2, n)
    pick_c = 2 + rng.integers(0, 3, n)
    rows = np.arange(n)
    need_p = pulm & ~found[:, :2].any(axis=1)
    need_c = card & ~found[:, 2:].any(axis=1)
    found[rows[need_p], pick_p[need_p]] = True
    found[rows[need_c], pick_c[need_c]] = True
    return found


def draw_latent(
    rng: np.random.Generator, n_cases: int, n_sites: int, patient: np.ndarray | None = None
) -> Latent:
    """Draw the latent state of ``n_cases`` cases.

    Args:
        rng: the generator reserved for latent variables.
        n_cases: number of cases (rows).
        n_sites: number of acquisition sites.
        patient: case -> patient map to reuse (patients numbered 0..P-1) instead of drawing
            one; a shadow cohort for uninformative modalities keeps the cohort's visit
            structure this way, so a patient's two visits show one (other) person.

    Returns:
        The per-case latent arrays.
    """
    patient = _case_to_patient(rng, n_cases) if patient is None else patient
    n_pat = int(patient.max()) + 1
    # Patient-level attributes, shared by all cases of one patient.
    p_male = rng.random(n_pat) < 0.5
    p_age = np.clip(np.round(rng.normal(58.0, 15.0, n_pat)), 18, 95)
    p_smoker = rng.choice(3, size=n_pat, p=[0.5, 0.3, 0.2])
    p_site = rng.integers(0, n_sites, n_pat)
    p_heart = rng.normal(0.27, 0.022, n_pat)
    p_lung = rng.normal(1.0, 0.04, n_pat)
    p_hr = rng.normal(68.0, 7.0, n_pat)

    first = np.zeros(n_cases, dtype=bool)
    first[np.unique(patient, return_index=True)[1]] = True
    age = p_age[patient] + np.where(first, 0, rng.integers(0, 2, n_cases))
    smoker = p_smoker[patient]
    site = p_site[patient]
    disease, subtype, severity = _draw_disease(rng, age, smoker, site)
    findings = _draw_findings(rng, subtype)

    # Follow-up visits usually carry the first visit's state, so grouped splits matter.
    keep = ~first & (rng.random(n_cases) < FOLLOW_UP_KEEPS_STATE)
    first_row = np.full(n_pat, -1)
    first_row[patient[first]] = np.flatnonzero(first)
    src = np.where(keep, first_row[patient], np.arange(n_cases))
    disease, subtype, findings = disease[src], subtype[src], findings[src]
    severity = np.where(
        keep, np.clip(severity[src] + rng.normal(0, 0.1, n_cases), 0.15, 1.0), severity
    )
    severity = np.where(disease, severity, 0.0)

    pulm = (subtype == 1) | (subtype == 3)
    card = (subtype == 2) | (subtype == 3)
    hr_rest = p_hr[patient] + card * (4.0 + 8.0 * severity) + pulm * 3.0 * severity
    return Latent(
        patient=patient,
        site=site,
        male=p_male[patient],
        age=age.astype(int),
        smoker=smoker,
        disease=disease,
        subtype=subtype,
        severity=severity,
        findings=findings,
        heart_base=p_heart[patient],
        lung_scale=p_lung[patient],
        hr_rest=hr_rest,
    )


def shortcut_rate(rate: float, disease: np.ndarray, shortcut: float, lift: float) -> np.ndarray:
    """Label-dependent missing probability per case for a planted presence shortcut.

    Healthy cases: ``rate + shortcut * (1 - rate) * lift``; diseased cases:
    ``rate * (1 - shortcut)``. At ``shortcut == 0`` both are ``rate``.

    Args:
        rate: the label-independent missing probability.
        disease: binary disease status per case.
        shortcut: strength in [0, 1).
        lift: share of the way from ``rate`` to 1 that healthy cases move at ``shortcut == 1``.
    """
    healthy = rate + shortcut * (1.0 - rate) * lift
    return np.where(disease, rate * (1.0 - shortcut), healthy)


def draw_missing(
    rng: np.random.Generator,
    n_cases: int,
    rate: float,
    disease: np.ndarray | None = None,
    shortcut: float = 0.0,
) -> np.ndarray:
    """Whole-modality missingness, shape (n_cases, 4) in :data:`MODALITIES` order.

    Each modality is missing independently with probability ``rate``; a case that would lose
    all four gets one of them back (chosen at random) so every case keeps at least one. With
    ``shortcut > 0`` the modalities in :data:`SHORTCUT_MODALITIES` are missing with the
    label-dependent probability of :func:`shortcut_rate` instead (the random draws are the
    same, only the thresholds move, so ``shortcut == 0`` gives exactly the default pattern).
    """
    prob = np.full((n_cases, len(MODALITIES)), rate)
    if shortcut > 0.0 and disease is not None:
        for name in SHORTCUT_MODALITIES:
            prob[:, MODALITIES.index(name)] = shortcut_rate(rate, disease, shortcut, SHORTCUT_LIFT)
    missing = rng.random((n_cases, len(MODALITIES))) < prob
    keep = rng.integers(0, len(MODALITIES), n_cases)
    all_gone = np.flatnonzero(missing.all(axis=1))
    missing[all_gone, keep[all_gone]] = False
    return missing


def draw_survival(rng: np.random.Generator, lat: Latent) -> tuple[np.ndarray, np.ndarray]:
    """Time to event (days) and event indicator under a proportional-hazards model.

    The hazard grows with disease, severity, mixed involvement and age; follow-up is censored
    uniformly between 0.5 and 3 years.
    """
    n = len(lat)
    log_hazard = (
        np.log(1.0 / 4000.0)
        + 1.3 * lat.disease
        + 1.2 * lat.severity
        + 0.4 * (lat.subtype == 3)
        + 0.03 * (lat.age - 58.0)
    )
    t_event = rng.exponential(1.0, n) / np.exp(log_hazard)
    t_censor = rng.uniform(182.0, 1095.0, n)
    event = (t_event <= t_censor).astype(int)
    time = np.round(np.minimum(t_event, t_censor), 1)
    return np.maximum(time, 0.1), event
