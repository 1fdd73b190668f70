"""Tiny copies of public datasets' official layouts, written by the tests (no real data needed).

The tests derive their expected values from these definitions, never from the adapters.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

# ---------------------------------------------------------------------------------- PTB-XL
SCP = pd.DataFrame(
    [
        ("NORM", 1.0, None, None, "NORM"),
        ("IMI", 1.0, None, None, "MI"),
        ("NDT", 1.0, 1.0, None, "STTC"),
        ("LVH", 1.0, None, None, "HYP"),
        ("CLBBB", 1.0, None, None, "CD"),
        ("SR", None, None, 1.0, None),
        ("AFIB", None, None, 1.0, None),
        ("LVOLT", None, 1.0, None, None),
    ],
    columns=["code", "diagnostic", "form", "rhythm", "diagnostic_class"],
).set_index("code")
# ecg_id -> (patient, strat_fold, scp_codes); record 12's .dat is deleted, record 13 has no file.
PTBXL_RECORDS: dict[int, tuple[int, int, dict[str, float]]] = {
    1: (101, 1, {"NORM": 100.0, "SR": 0.0}),
    2: (101, 1, {"NORM": 80.0, "SR": 0.0}),
    3: (102, 2, {"IMI": 50.0, "SR": 0.0}),
    4: (103, 3, {"NDT": 0.0, "LVOLT": 0.0, "AFIB": 0.0}),
    5: (104, 4, {"LVH": 100.0, "NDT": 100.0, "SR": 0.0}),
    6: (105, 5, {"CLBBB": 100.0, "AFIB": 0.0}),
    7: (106, 9, {"NORM": 100.0, "SR": 0.0}),
    8: (107, 9, {"IMI": 100.0, "SR": 0.0}),
    9: (108, 10, {"NORM": 100.0}),
    10: (109, 10, {"LVOLT": 0.0, "SR": 0.0}),
    11: (110, 8, {"NORM": 100.0, "SR": 0.0}),
    12: (111, 7, {"NORM": 100.0}),
    13: (112, 6, {"NORM": 100.0}),
    14: (113, 2, {"NORM": "high"}),  # type: ignore[dict-item]
}
PTBXL_BROKEN = {12: "data file", 13: "header", 14: "scp_codes"}


def write_ptbxl(root: Path) -> Path:
    import wfdb

    folder = root / "records100" / "00000"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for eid, (patient, fold, codes) in PTBXL_RECORDS.items():
        name = f"{eid:05d}_lr"
        if eid != 13:
            signal = rng.normal(0, 0.2, (1000, 12))
            wfdb.wrsamp(
                name,
                fs=100,
                units=["mV"] * 12,
                sig_name=[f"L{k}" for k in range(12)],
                p_signal=signal,
                fmt=["16"] * 12,
                write_dir=str(folder),
            )
        rows.append(
            {
                "ecg_id": eid,
                "patient_id": float(patient),
                "age": 300.0 if eid == 3 else 40.0 + eid,
                "sex": eid % 2,
                "height": np.nan if eid % 3 == 0 else 170.0,
                "weight": 70.0,
                "device": "CS-12   E",
                "report": f"sinusrhythmus bericht {eid}",
                "scp_codes": str(codes),
                "strat_fold": fold,
                "filename_lr": f"records100/00000/{name}",
                "filename_hr": f"records500/00000/{eid:05d}_hr",
                "baseline_drift": " , II,III" if eid == 5 else np.nan,
                "static_noise": np.nan,
                "burst_noise": np.nan,
                "electrodes_problems": np.nan,
                "extra_beats": "1ES" if eid == 6 else np.nan,
                "pacemaker": np.nan,
            }
        )
    (folder / "00012_lr.dat").unlink()
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    SCP.to_csv(root / "scp_statements.csv")
    return root


# ---------------------------------------------------------------------------------- ChestX-ray14
NIH_PATIENTS = 12  # each has a "No Finding" image and an abnormal one


def nih_rows() -> list[dict[str, Any]]:
    findings = ["Effusion", "Cardiomegaly|Effusion", "Nodule", "Infiltration"]
    rows = []
    for p in range(1, NIH_PATIENTS + 1):
        for k, labels in enumerate(["No Finding", findings[p % 4]]):
            rows.append(
                {
                    "Image Index": f"{p:08d}_{k:03d}.png",
                    "Finding Labels": labels,
                    "Follow-up #": k,
                    "Patient ID": p,
                    "Patient Age": 30 + p,
                    "Patient Gender": "MF"[p % 2],
                    "View Position": "PA" if k == 0 else "AP",
                }
            )
    # Missing file, unreadable file, unknown finding: each must be reported, not crash.
    rows.append(
        {
            "Image Index": "00000099_000.png",
            "Finding Labels": "Mass",
            "Follow-up #": 0,
            "Patient ID": 99,
            "Patient Age": 50,
            "Patient Gender": "F",
            "View Position": "PA",
        }
    )
    rows.append(
        {
            "Image Index": "00000098_000.png",
            "Finding Labels": "Mass",
            "Follow-up #": 0,
            "Patient ID": 98,
            "Patient Age": 50,
            "Patient Gender": "F",
            "View Position": "PA",
        }
    )
    rows.append(
        {
            "Image Index": "00000001_005.png",
            "Finding Labels": "Pneumonitis",
            "Follow-up #": 5,
            "Patient ID": 1,
            "Patient Age": 31,
            "Patient Gender": "M",
            "View Position": "PA",
        }
    )
    return rows


def write_nih(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    rows = nih_rows()
    for i, r in enumerate(rows):
        # Both layouts at once: the full download's images_00N/images/ and the subset's folders.
        sub = root / ("images_001/images" if i % 2 else "train/0_normal")
        sub.mkdir(parents=True, exist_ok=True)
        if r["Image Index"] == "00000099_000.png":
            continue
        if r["Image Index"] == "00000098_000.png":
            (sub / r["Image Index"]).write_bytes(b"not a png at all")
            continue
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(sub / r["Image Index"])
    pd.DataFrame(rows).to_csv(root / "Data_Entry_2017_v2020.csv", index=False)
    return root


# ---------------------------------------------------------------------------------- MIMIC-IV
MIMIC_SUBJECTS = 24


def _gz_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", newline="") as fh:
        frame.to_csv(fh, index=False)


def mimic_tables() -> dict[str, pd.DataFrame]:
    """One to three admissions per subject (100 days apart); the last admission of every third
    subject ends in death. Subject 1 has three admissions, for the history test."""
    adm, dx, lab = [], [], []
    base = pd.Timestamp("2150-01-01 08:00")
    for s in range(1, MIMIC_SUBJECTS + 1):
        n_adm = 3 if s == 1 else 1 + s % 2
        for k in range(n_adm):
            hadm = s * 100 + k
            start = base + pd.Timedelta(days=100 * k + s)
            died = k == n_adm - 1 and s % 3 == 0
            adm.append(
                {
                    "subject_id": s,
                    "hadm_id": hadm,
                    "admittime": start,
                    "dischtime": start + pd.Timedelta(days=3 + 6 * (s % 3)),
                    "deathtime": start + pd.Timedelta(days=3) if died else pd.NaT,
                    "admission_type": "URGENT" if s % 2 else "EW EMER.",
                    "admission_location": "EMERGENCY ROOM",
                    "insurance": "Medicare",
                    "language": "ENGLISH",
                    "marital_status": "SINGLE",
                    "race": "WHITE",
                    "edregtime": start - pd.Timedelta(hours=3),
                    "edouttime": start,
                    "hospital_expire_flag": int(died),
                }
            )
            dx.append(
                {
                    "subject_id": s,
                    "hadm_id": hadm,
                    "seq_num": 1,
                    "icd_code": f"{4000 + hadm}",
                    "icd_version": 9 if k == 0 else 10,
                }
            )
            for hours, item, value in (
                (1.0, 50983, 140.0 + s),
                (5.0, 50983, 130.0),
                (2.5, 50912, 1.0),
                (30.0, 50971, 6.0),
            ):
                lab.append(
                    {
                        "labevent_id": len(lab),
                        "subject_id": s,
                        "hadm_id": hadm,
                        "itemid": item,
                        "charttime": start + pd.Timedelta(hours=hours),
                        "value": str(value),
                        "valuenum": value,
                        "ref_range_lower": np.nan
                        if item == 50912 and s == 3
                        else {50983: 133.0, 50912: 0.5, 50971: 3.3}[item],
                        "ref_range_upper": {50983: 145.0, 50912: 1.2, 50971: 5.1}[item],
                    }
                )
    lab.append({**lab[0], "labevent_id": len(lab), "hadm_id": np.nan})  # outpatient: ignored
    lab.append({**lab[0], "labevent_id": len(lab), "valuenum": np.nan, "value": "HEMOLYZED"})
    adm.append({**adm[0], "subject_id": 999, "hadm_id": 99900})  # no patients row
    adm.append({**adm[0], "hadm_id": 99901, "admittime": pd.NaT})  # no admission time
    patients = pd.DataFrame(
        {
            "subject_id": range(1, MIMIC_SUBJECTS + 1),
            "gender": ["F", "M"] * (MIMIC_SUBJECTS // 2),
            "anchor_age": 60,
            "anchor_year": 2150,
            "anchor_year_group": "2011 - 2013",
            "dod": np.nan,
        }
    )
    items = pd.DataFrame(
        {
            "itemid": [50983, 50912, 50971],
            "label": ["Sodium", "Creatinine", "Potassium"],
            "fluid": "Blood",
            "category": "Chemistry",
        }
    )
    icu = pd.DataFrame(
        {
            "subject_id": [1],
            "hadm_id": [100],
            "stay_id": [1],
            "intime": [base + pd.Timedelta(days=1, hours=2)],
        }
    )
    return {
        "hosp/admissions": pd.DataFrame(adm),
        "hosp/patients": patients,
        "hosp/labevents": pd.DataFrame(lab),
        "hosp/d_labitems": items,
        "hosp/diagnoses_icd": pd.DataFrame(dx),
        "icu/icustays": icu,
    }


def write_mimic(root: Path) -> Path:
    for name, frame in mimic_tables().items():
        if name == "hosp/d_labitems":  # plain .csv: both forms of the download must work
            (root / "hosp").mkdir(parents=True, exist_ok=True)
            frame.to_csv(root / f"{name}.csv", index=False)
        else:
            _gz_csv(frame, root / f"{name}.csv.gz")
    return root


# ---------------------------------------------------------------------------------- MedMNIST
def medmnist_arrays(
    n: tuple[int, int, int] = (24, 8, 8),
    *,
    multilabel: int = 0,
    colour: bool = False,
    seed: int = 2,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for s, count in zip(("train", "val", "test"), n, strict=True):
        shape = (count, 12, 12, 3) if colour else (count, 12, 12)
        out[f"{s}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        if multilabel:
            out[f"{s}_labels"] = rng.integers(0, 2, (count, multilabel)).astype(np.uint8)
        else:
            out[f"{s}_labels"] = (np.arange(count) % 2).reshape(-1, 1).astype(np.uint8)
    return out


def write_pneumonia(folder: Path) -> Path:
    arrays = medmnist_arrays()
    arrays["train_labels"][3, 0] = 5  # not a class of PneumoniaMNIST: reported, not a new class
    path = folder / "pneumoniamnist.npz"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path
