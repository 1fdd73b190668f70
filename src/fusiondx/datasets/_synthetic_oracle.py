"""Oracle separability check: simple hand-made features + logistic regression per modality.

The features are computed from the files on disk (not from hidden state), so this also checks
that what was written carries the intended evidence: each modality alone should be weak-to-fair
(AUROC ~0.68-0.82) and all of them together clearly better (>= ~0.92).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import wfdb
from PIL import Image
from pydicom.pixels import apply_modality_lut
from scipy import ndimage, signal
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fusiondx.datasets import _synthetic_image as img
from fusiondx.datasets._synthetic_io import dicom_to_unit

IMAGE_FEATURES = ("lung_mean", "lung_p95", "lung_std", "blob_max", "heart_width")
ECG_FEATURES = ("rate", "rr_cv", "st_abs", "p_amp", "r_amp")
LAB_FEATURES = (
    "crp",
    "troponin",
    "bnp",
    "wbc",
    "spo2",
    "heart_rate_vitals",
    "smoker_current",
    "smoker_former",
    "age",
    "male",
)


def read_image(path: Path) -> np.ndarray:
    """Image as float in [0, 1] (PNG / 255, DICOM through its modality LUT)."""
    if path.suffix == ".dcm":
        ds = pydicom.dcmread(path)
        return dicom_to_unit(apply_modality_lut(ds.pixel_array, ds).astype(np.float64))
    return np.asarray(Image.open(path), dtype=np.float64) / 255.0


def read_signal(path: Path, npy_rate: float = 100.0) -> tuple[np.ndarray, float]:
    """Signal (leads, samples) in mV and its rate (``.npy`` carries none: ``npy_rate``)."""
    if path.suffix == ".hea":
        rec = wfdb.rdrecord(str(path.with_suffix("")))
        return rec.p_signal.T, float(rec.fs)
    return np.load(path), npy_rate


def _lung_roi(size: int) -> np.ndarray:
    """Inner parts of both lung fields in the un-shifted canonical layout, minus the heart."""
    g = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(g, g)
    roi = np.zeros((size, size), dtype=bool)
    for cx, cy in img.LUNG_CENTRES:
        roi |= ((u - cx) / (0.7 * img.LUNG_RADII[0])) ** 2 + (
            (v - cy) / (0.7 * img.LUNG_RADII[1])
        ) ** 2 < 1
    heart = (np.abs(u - img.HEART_CENTRE[0]) < 0.42) & (
        v > img.HEART_CENTRE[1] - img.HEART_HALF_HEIGHT - 0.05
    )
    return roi & ~heart


def image_features(x: np.ndarray) -> np.ndarray:
    """Lung brightness statistics, brightest lung blob and heart width.

    Intensities are first normalised per image (0 = median lung, 1 = 98th percentile), which
    removes most of the site contrast/brightness effect.
    """
    size = x.shape[0]
    roi = _lung_roi(size)
    lung_median, bright = np.median(x[roi]), np.percentile(x, 98)
    z = (x - lung_median) / max(bright - lung_median, 1e-3)
    smooth = ndimage.gaussian_filter(z, sigma=1.5 * size / 64)
    lung = smooth[roi]
    g = (np.arange(size) + 0.5) / size * 2 - 1
    rows = (g > img.HEART_CENTRE[1] - 0.08) & (g < img.HEART_CENTRE[1] + 0.08)
    band = np.abs(g) < 0.7
    width = (smooth[np.ix_(rows, band)] > 0.75).sum(axis=1).mean() / size
    return np.array([z[roi].mean(), np.percentile(lung, 95), lung.std(), lung.max(), width])


def ecg_features(sig: np.ndarray, fs: float) -> np.ndarray:
    """Heart rate, RR irregularity, largest |ST| shift over leads, P-wave and R-wave heights."""
    b, a = signal.butter(2, 0.5 / (fs / 2), "high")
    x = signal.filtfilt(b, a, sig, axis=1)
    ref = x[1] if len(x) > 1 else x[0]
    peaks, _ = signal.find_peaks(
        ref, height=0.45 * np.percentile(ref, 99.5), distance=int(0.27 * fs)
    )
    peaks = peaks[(peaks > 0.25 * fs) & (peaks < x.shape[1] - 0.3 * fs)]
    if len(peaks) < 3:
        return np.array([np.nan] * len(ECG_FEATURES))
    rr = np.diff(peaks) / fs
    st_at = peaks + np.round(0.10 * np.sqrt(rr.mean()) * fs).astype(int)
    base_at = peaks - int(round(0.07 * fs))
    st = (x[:, st_at] - x[:, base_at]).mean(axis=1)
    p = (ref[peaks - int(round(0.16 * fs))] - ref[base_at]).mean()
    r_amp = np.median(ref[peaks] - ref[base_at])
    return np.array([60.0 / rr.mean(), rr.std() / rr.mean(), np.abs(st).max(), p, r_amp])


def _lab_frame(m: pd.DataFrame) -> pd.DataFrame:
    """Numeric lab features: log of the skewed markers, smoking dummies, age and sex."""
    out = m[["crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals"]].astype(float).copy()
    for col in ("crp", "troponin", "bnp", "wbc"):
        out[col] = np.log(out[col])
    labs_missing = m["smoker"].fillna("") == ""
    out["smoker_current"] = np.where(labs_missing, np.nan, m["smoker"] == "current")
    out["smoker_former"] = np.where(labs_missing, np.nan, m["smoker"] == "former")
    out["age"] = m["age"].astype(float)
    out["male"] = (m["sex"] == "M").astype(float)
    return out


def oracle_features(manifest: str | Path, npy_rate: float = 100.0) -> pd.DataFrame:
    """Per-case oracle features (NaN where the modality is missing) plus the report text."""
    manifest = Path(manifest)
    root = manifest.parent
    m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    feats = pd.DataFrame(index=m.index, columns=[*IMAGE_FEATURES, *ECG_FEATURES], dtype=float)
    for i, rel in enumerate(m["image"]):
        if rel:
            feats.loc[i, list(IMAGE_FEATURES)] = image_features(read_image(root / rel))
    for i, rel in enumerate(m["ecg"]):
        if rel:
            feats.loc[i, list(ECG_FEATURES)] = ecg_features(*read_signal(root / rel, npy_rate))
    labs = _lab_frame(m.replace("", np.nan))
    feats = pd.concat([feats, labs], axis=1)
    for col in ("image", "ecg", "report"):
        feats[f"has_{col}"] = m[col] != ""
    feats["has_labs"] = m["smoker"] != ""
    feats["report"] = m["report"]
    feats["y"] = (m["label"] == "disease").astype(int)
    feats["group"] = m["patient_id"]
    return feats


def _model(numeric: list[str], text: bool, c: float = 1.0) -> Pipeline:
    """Logistic regression on scaled numeric columns (imputed + indicators) and/or bag of words."""
    parts: list[tuple[str, object, list[str] | str]] = []
    if numeric:
        num = make_pipeline(SimpleImputer(add_indicator=True), StandardScaler())
        parts.append(("num", num, numeric))
    if text:
        parts.append(("txt", CountVectorizer(binary=True, min_df=2), "report"))
    return make_pipeline(ColumnTransformer(parts), LogisticRegression(C=c, max_iter=2000))


def _cv_auroc(
    f: pd.DataFrame, numeric: list[str], text: bool, folds: int, seed: int, c: float = 1.0
) -> float:
    """Out-of-fold AUROC with patient-grouped, label-stratified folds."""
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    score = cross_val_predict(
        _model(numeric, text, c), f, f["y"], groups=f["group"], cv=cv, method="decision_function"
    )
    return float(roc_auc_score(f["y"], score))


PRESENCE_FEATURES = (
    "has_image",
    "has_ecg",
    "has_report",
    "has_labs",
    *(f"has_{c}" for c in LAB_FEATURES[:6]),
)


def presence_features(manifest: str | Path) -> pd.DataFrame:
    """Per-case 0/1 presence of each modality and lab cell (no content), label and patient."""
    m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    feats = pd.DataFrame(
        {
            f"has_{col}": (m[col] != "").astype(float)
            for col in ("image", "ecg", "report", *LAB_FEATURES[:6])
        }
    )
    feats["has_labs"] = (m["smoker"] != "").astype(float)
    feats["y"] = (m["label"] == "disease").astype(int)
    feats["group"] = m["patient_id"]
    return feats


def presence_auroc(manifest: str | Path, *, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated AUROC of logistic regression on presence indicators only.

    The features are :data:`PRESENCE_FEATURES`: which of image, ECG, report and labs a case has
    and which lab cells are filled, nothing of their content. Folds as :func:`oracle_aurocs`.
    """
    f = presence_features(manifest)
    return _cv_auroc(f, list(PRESENCE_FEATURES), False, folds, seed)


def oracle_aurocs(
    manifest: str | Path, *, folds: int = 5, seed: int = 0, npy_rate: float = 100.0
) -> dict[str, float]:
    """Cross-validated AUROC of logistic regression on oracle features, per modality and fused.

    Single-modality scores use only the cases that have that modality; ``fused`` uses every
    case, with missing values mean-imputed plus missing-indicators. Folds are grouped by patient.

    Returns:
        ``{"image": ..., "ecg": ..., "report": ..., "labs": ..., "fused": ...}``.
    """
    f = oracle_features(manifest, npy_rate)
    out = {
        "image": _cv_auroc(f[f["has_image"]], list(IMAGE_FEATURES), False, folds, seed),
        "ecg": _cv_auroc(f[f["has_ecg"]], list(ECG_FEATURES), False, folds, seed),
        "report": _cv_auroc(f[f["has_report"]], [], True, folds, seed, c=0.1),
        "labs": _cv_auroc(f[f["has_labs"]], list(LAB_FEATURES), False, folds, seed),
    }
    out["fused"] = _cv_auroc(
        f, [*IMAGE_FEATURES, *ECG_FEATURES, *LAB_FEATURES], True, folds, seed, c=0.1
    )
    return out
