"""File writers for the synthetic cohort (PNG, DICOM, WFDB, NPY), all free of time stamps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import wfdb
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

# Stored int16 = round(x * DICOM_SCALE) + DICOM_STORED_OFFSET for x in [0, 1]; physical values
# are stored * slope + intercept, i.e. x * 2000 - 1000 (an HU-like range).
DICOM_SCALE = 4000
DICOM_STORED_OFFSET = -2000
DICOM_SLOPE = 0.5
DICOM_INTERCEPT = 0.0
_DX_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")  # Digital X-Ray Image Storage - For Presentation
# WFDB digital units per mV: 1 uV resolution and +-32.7 mV range in format 16.
WFDB_GAIN = 1000.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Quantise a [0, 1] float image to uint8."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write a 2-D uint8 array as an 8-bit greyscale PNG."""
    Image.fromarray(pixels).save(path, format="PNG")


def write_dicom(
    path: Path, img: np.ndarray, *, case_id: str, patient_id: str, sex: str, age: int, seed: int
) -> None:
    """Write a [0, 1] float image as signed 16-bit DICOM with rescale and window set.

    UIDs are derived from the seed and ids (not random, not time based) so reruns are identical.
    """
    stored = (np.round(np.clip(img, 0.0, 1.0) * DICOM_SCALE) + DICOM_STORED_OFFSET).astype(np.int16)
    root = ["fusiondx-synthetic", str(seed)]
    sop_uid = generate_uid(entropy_srcs=[*root, case_id, "sop"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _DX_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = _DX_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*root, case_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*root, case_id, "series"])
    ds.PatientID = patient_id
    ds.PatientName = patient_id
    ds.PatientSex = sex
    ds.PatientAge = f"{min(age, 999):03d}Y"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [round(350.0 / stored.shape[0], 4)] * 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = DICOM_SLOPE
    ds.RescaleIntercept = DICOM_INTERCEPT
    ds.RescaleType = "US"
    ds.WindowCenter = 0
    ds.WindowWidth = 2000
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def dicom_to_unit(physical: np.ndarray) -> np.ndarray:
    """Map rescaled (physical) DICOM values back to the [0, 1] rendering scale."""
    stored = (physical - DICOM_INTERCEPT) / DICOM_SLOPE
    return (stored - DICOM_STORED_OFFSET) / DICOM_SCALE


def write_wfdb(
    directory: Path, record: str, signal: np.ndarray, rate: int, leads: list[str]
) -> None:
    """Write (leads, samples) mV as a WFDB record (format 16, 1000 units per mV, baseline 0)."""
    n_leads = signal.shape[0]
    digital = np.round(signal.T.astype(np.float64) * WFDB_GAIN).astype(np.int64)
    with warnings.catch_warnings():
        # wfdb 4.3 uses pandas' deprecated ``inplace=``: one warning per record, not actionable.
        warnings.filterwarnings("ignore", message="The inplace keyword", module=r"wfdb\.")
        wfdb.wrsamp(
            record,
            fs=rate,
            units=["mV"] * n_leads,
            sig_name=leads,
            d_signal=np.clip(digital, -32767, 32767),  # -32768 is WFDB's "no sample" code
            fmt=["16"] * n_leads,
            adc_gain=[WFDB_GAIN] * n_leads,
            baseline=[0] * n_leads,
            write_dir=str(directory),
        )


def write_npy(path: Path, signal: np.ndarray) -> None:
    """Write (leads, samples) float32 mV as ``.npy``."""
    np.save(path, signal.astype(np.float32), allow_pickle=False)
