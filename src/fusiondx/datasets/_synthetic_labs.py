"""Labs and vitals for the synthetic cohort: log-normal markers with disease, age and sex effects."""

from __future__ import annotations

import numpy as np

from fusiondx.datasets._synthetic_latent import SMOKER, Latent, shortcut_rate

LAB_COLUMNS: tuple[str, ...] = ("crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals")
# Fraction of individual lab values that are NaN (on top of whole-block missingness).
VALUE_NAN_RATE = 0.05
# Planted presence shortcut: the cardiac markers are ordered when heart disease is suspected,
# so within a present lab block they are missing more often for healthy cases.
SHORTCUT_CELLS: tuple[str, ...] = ("troponin", "bnp")
SHORTCUT_CELL_LIFT = 0.2


def draw_labs(
    rng: np.random.Generator,
    lat: Latent,
    *,
    disease: np.ndarray | None = None,
    shortcut: float = 0.0,
) -> dict[str, np.ndarray]:
    """Draw labs and vitals for every case.

    CRP and WBC rise with pulmonary (inflammatory) involvement, troponin and BNP with cardiac
    involvement, SpO2 falls with pulmonary involvement. Age, sex and smoking shift the same
    markers in healthy people too, which confounds a naive reader of the labs.

    Args:
        rng: the generator reserved for labs.
        lat: the latent state the values are rendered from.
        disease: label of the case each row is written for (drives the planted shortcut; it
            differs from ``lat.disease`` when the labs are rendered from another case).
        shortcut: planted presence shortcut in [0, 1): :data:`SHORTCUT_CELLS` go missing with
            a label-dependent probability. The draws are the same as without it.

    Returns:
        Column name -> float array (rounded), plus ``smoker`` as strings.
    """
    n = len(lat)
    sev = lat.severity
    pulm = lat.pulmonary
    card = lat.cardiac
    age_z = (lat.age - 58.0) / 15.0
    current = lat.smoker == 2

    def lognormal(log_median: np.ndarray | float, sd: float) -> np.ndarray:
        return np.exp(log_median + sd * rng.standard_normal(n))

    crp = lognormal(
        np.log(3.0) + 0.25 * age_z + 0.35 * current + pulm * (1.1 + 0.6 * sev) + card * 0.25 * sev,
        1.25,
    )
    wbc = lognormal(np.log(7.0) + 0.15 * current + pulm * (0.15 + 0.15 * sev), 0.27)
    troponin = lognormal(
        np.log(6.0) + 0.35 * age_z + 0.3 * lat.male + card * (0.2 + 0.3 * sev), 1.1
    )
    bnp = lognormal(np.log(45.0) + 0.55 * age_z - 0.2 * lat.male + card * (0.2 + 0.3 * sev), 1.1)
    spo2 = (
        97.0 - 0.6 * age_z - 1.2 * current - pulm * (1.0 + 1.2 * sev) + 1.8 * rng.standard_normal(n)
    )
    hr = lat.hr_rest + 10.0 * rng.standard_normal(n)
    # Floors mimic assay detection limits (and keep every value log-transformable).
    labs = {
        "crp": np.round(np.maximum(crp, 0.1), 1),
        "troponin": np.round(np.maximum(troponin, 0.5), 1),
        "bnp": np.round(np.maximum(bnp, 5.0), 0),
        "wbc": np.round(wbc, 2),
        "spo2": np.round(np.clip(spo2, 70.0, 100.0), 1),
        "heart_rate_vitals": np.round(np.clip(hr, 35.0, 190.0), 0),
    }
    for name in LAB_COLUMNS:
        rate: float | np.ndarray = VALUE_NAN_RATE
        if shortcut > 0.0 and disease is not None and name in SHORTCUT_CELLS:
            rate = shortcut_rate(VALUE_NAN_RATE, disease, shortcut, SHORTCUT_CELL_LIFT)
        labs[name] = np.where(rng.random(n) < rate, np.nan, labs[name])
    labs["smoker"] = np.array(SMOKER)[lat.smoker]
    return labs
