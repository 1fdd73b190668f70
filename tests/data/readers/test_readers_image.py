"""Image readers and preprocessing: real files written with Pillow, pydicom, nibabel, numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusiondx.data.preprocessors.image import preprocess_image
from fusiondx.data.readers import ImageRecord, read_image
from fusiondx.errors import DataError

# ../shared/data next to the repository root.
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
CT_SMALL = SHARED / "pydicom_testfiles" / "CT_small.dcm"


def assert_data_error(exc_info: pytest.ExceptionInfo[DataError], path: Path) -> None:
    msg = str(exc_info.value)
    assert str(path) in msg, msg
    assert "Fix:" in msg, msg


# ------------------------------------------------------------------------------------ Pillow


def test_png_grey_8bit(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    p = tmp_path / "g.png"
    Image.fromarray(arr, mode="L").save(p)
    rec = read_image(p)
    assert rec.spatial_dims == 2
    assert rec.array.dtype == np.float32
    assert rec.array.shape == (1, 3, 4)
    np.testing.assert_array_equal(rec.array[0], arr)


def test_png_rgb_and_rgba_drop_alpha(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 10
    rgb[..., 1] = 20
    rgb[..., 2] = 30
    p = tmp_path / "c.png"
    Image.fromarray(rgb, mode="RGB").save(p)
    rec = read_image(p)
    assert rec.array.shape == (3, 2, 3)
    assert rec.array[:, 0, 0].tolist() == [10, 20, 30]

    rgba = np.concatenate([rgb, np.full((2, 3, 1), 128, np.uint8)], axis=-1)
    p2 = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(p2)
    rec2 = read_image(p2)
    assert rec2.array.shape == (3, 2, 3)
    np.testing.assert_array_equal(rec2.array, rec.array)


def test_png_16bit_keeps_range(tmp_path: Path) -> None:
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    p = tmp_path / "d.png"
    Image.fromarray(arr).save(p)
    rec = read_image(p)
    assert rec.array.shape == (1, 2, 2)
    np.testing.assert_array_equal(rec.array[0], arr.astype(np.float32))


def test_jpeg_and_uppercase_suffix(tmp_path: Path) -> None:
    arr = np.full((8, 8), 100, dtype=np.uint8)
    p = tmp_path / "x.JPG"
    Image.fromarray(arr, mode="L").save(p, format="JPEG", quality=95)
    rec = read_image(p)
    assert rec.array.shape == (1, 8, 8)
    assert np.abs(rec.array - 100).max() <= 2  # lossy, but a flat image survives


def test_truncated_png_is_data_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    full = tmp_path / "full.png"
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), mode="L").save(full)
    data = full.read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as ei:
        read_image(p)
    assert_data_error(ei, p)
    assert "Pillow" in str(ei.value)


def test_non_image_with_png_suffix(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture")
    with pytest.raises(DataError) as ei:
        read_image(p)
    assert_data_error(ei, p)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    p = tmp_path / "nope.png"
    with pytest.raises(DataError) as ei:
        read_image(p)
    assert_data_error(ei, p)
    assert "not found" in str(ei.value)

    q = tmp_path / "img.gif"
    q.write_bytes(b"GIF89a")
    with pytest.raises(DataError) as ei:
        read_image(q)
    assert_data_error(ei, q)
    assert ".png" in str(ei.value) and ".nii.gz" in str(ei.value)


# ------------------------------------------------------------------------------------- DICOM


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    slope: float | None = 2.0,
    intercept: float | None = -1024.0,
    window: tuple[object, object] | None = (40.0, 400.0),
    bits_stored: int = 12,
    with_pixels: bool = True,
) -> Path:
    """Write a minimal valid uncompressed CT image with pydicom 3."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientID = "TEST"
    if with_pixels:
        frames = pixels.shape[0] if pixels.ndim == 3 else 1
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.astype("<u2").tobytes()
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_rescale_exact_and_window(tmp_path: Path) -> None:
    stored = np.array([[0, 500, 512], [530, 1000, 4095]], dtype=np.uint16)
    p = write_dicom(tmp_path / "ct.dcm", stored)
    rec = read_image(p)
    assert rec.spatial_dims == 2
    assert rec.array.shape == (1, 2, 3)
    np.testing.assert_array_equal(rec.array[0], stored.astype(np.float32) * 2 - 1024)
    assert rec.meta["window_center"] == 40.0
    assert rec.meta["window_width"] == 400.0

    out = preprocess_image(rec, size=(2, 3), window="header", normalize="none")
    # Window [40 - 200, 40 + 200] = [-160, 240]
    assert out.min() == -160 and out.max() == 240
    np.testing.assert_array_equal(out[0], np.clip(stored * 2.0 - 1024, -160, 240))

    explicit = preprocess_image(rec, size=(2, 3), window=(0.0, 100.0), normalize="none")
    assert explicit.min() == -50 and explicit.max() == 50


def test_dicom_multivalued_window_takes_first(tmp_path: Path) -> None:
    stored = np.zeros((4, 4), dtype=np.uint16)
    p = write_dicom(tmp_path / "mv.dcm", stored, window=([40.0, 300.0], [400.0, 1500.0]))
    rec = read_image(p)
    assert (rec.meta["window_center"], rec.meta["window_width"]) == (40.0, 400.0)


def test_dicom_without_suffix_and_multiframe(tmp_path: Path) -> None:
    stored = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    p = write_dicom(tmp_path / "IM0001", stored, slope=None, intercept=None)
    rec = read_image(p)
    assert rec.spatial_dims == 3
    assert rec.array.shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(rec.array[0], stored)


def test_dicom_monochrome1_inverted(tmp_path: Path) -> None:
    stored = np.array([[0, 100], [200, 4095]], dtype=np.uint16)
    p = write_dicom(
        tmp_path / "m1.dcm",
        stored,
        photometric="MONOCHROME1",
        slope=None,
        intercept=None,
        window=(1000.0, 500.0),
    )
    rec = read_image(p)
    assert rec.meta["inverted"] is True
    # 12 bits stored: reflected about the middle of [0, 4095].
    np.testing.assert_array_equal(rec.array[0], 4095 - stored.astype(np.float32))
    assert rec.meta["window_center"] == 4095 - 1000.0
    assert rec.array[0, 0, 0] > rec.array[0, 1, 1]  # former black is now bright


def test_dicom_garbage_and_no_pixels(tmp_path: Path) -> None:
    p = tmp_path / "bad.dcm"
    p.write_bytes(b"\x00" * 50 + b"garbage")
    with pytest.raises(DataError) as ei:
        read_image(p)
    assert_data_error(ei, p)
    assert "pydicom" in str(ei.value)

    q = write_dicom(tmp_path / "nopix.dcm", np.zeros((2, 2)), with_pixels=False)
    with pytest.raises(DataError) as ei:
        read_image(q)
    assert_data_error(ei, q)
    assert "no pixel data" in str(ei.value)

    # Valid header, PixelData cut short.
    r = write_dicom(tmp_path / "short.dcm", np.zeros((8, 8), dtype=np.uint16))
    data = r.read_bytes()
    t = tmp_path / "short_cut.dcm"
    t.write_bytes(data[:-40])
    with pytest.raises(DataError) as ei:
        read_image(t)
    assert_data_error(ei, t)


def test_header_window_missing_is_data_error(tmp_path: Path) -> None:
    p = write_dicom(tmp_path / "nowin.dcm", np.zeros((4, 4), np.uint16), window=None)
    rec = read_image(p)
    with pytest.raises(DataError) as ei:
        preprocess_image(rec, size=(4, 4), window="header")
    assert_data_error(ei, p)


@pytest.mark.realdata
def test_pydicom_ct_small() -> None:
    if not CT_SMALL.exists():
        pytest.skip("shared pydicom test files not present")
    rec = read_image(CT_SMALL)
    assert rec.array.shape == (1, 128, 128)
    assert rec.meta["modality"] == "CT"
    # Rescale applied: air/soft tissue in Hounsfield units, not raw unsigned values.
    assert rec.array.min() < -500
    assert rec.array.min() > -1100 and rec.array.max() < 3100
    out = preprocess_image(rec, size=(32, 32), window=(40, 400))
    assert out.shape == (1, 32, 32)
    assert abs(float(out.mean())) < 1e-4 and abs(float(out.std()) - 1) < 1e-3


# ------------------------------------------------------------------------------- NIfTI / npy


def test_nifti_3d_axes_and_values(tmp_path: Path) -> None:
    import nibabel as nib

    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (x, y, z)
    p = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), p)
    rec = read_image(p)
    assert rec.spatial_dims == 3
    assert rec.array.shape == (1, 4, 3, 2)  # (C, D=z, H=y, W=x)
    np.testing.assert_array_equal(rec.array[0], data.transpose(2, 1, 0))

    # Same voxels stored with the x axis flipped: reoriented to the same array.
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = data.shape[0] - 1
    q = tmp_path / "flipped.nii"
    nib.save(nib.Nifti1Image(data[::-1].copy(), flip), q)
    np.testing.assert_array_equal(read_image(q).array, rec.array)


def test_nifti_2d_and_singleton_slice(tmp_path: Path) -> None:
    import nibabel as nib

    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = tmp_path / "slice.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), p)
    rec = read_image(p)
    assert rec.spatial_dims == 2
    assert rec.array.shape == (1, 3, 2)
    np.testing.assert_array_equal(rec.array[0], data.T)

    q = tmp_path / "slice3d.nii.gz"
    nib.save(nib.Nifti1Image(data[..., None], np.eye(4)), q)
    rec3 = read_image(q)
    assert rec3.spatial_dims == 2
    np.testing.assert_array_equal(rec3.array, rec.array)


def test_nifti_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "bad.nii.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataError) as ei:
        read_image(p)
    assert_data_error(ei, p)
    assert "nibabel" in str(ei.value)


def test_npy_2d_3d_and_nan(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    p = tmp_path / "a.npy"
    np.save(p, a)
    rec = read_image(p)
    assert rec.spatial_dims == 2 and rec.array.shape == (1, 2, 3)
    np.testing.assert_array_equal(rec.array[0], a)

    v = np.ones((2, 3, 4), dtype=np.float64)
    q = tmp_path / "v.npy"
    np.save(q, v)
    rv = read_image(q)
    assert rv.spatial_dims == 3 and rv.array.shape == (1, 2, 3, 4)
    assert rv.array.dtype == np.float32

    bad = a.astype(np.float32)
    bad[0, 0] = np.nan
    r = tmp_path / "nan.npy"
    np.save(r, bad)
    with pytest.raises(DataError) as ei:
        read_image(r)
    assert_data_error(ei, r)
    assert "NaN" in str(ei.value)

    s = tmp_path / "4d.npy"
    np.save(s, np.zeros((1, 2, 2, 2)))
    with pytest.raises(DataError) as ei:
        read_image(s)
    assert_data_error(ei, s)


# ----------------------------------------------------------------------------- preprocessing


def test_preprocess_shapes_channels_and_norms() -> None:
    rng = np.random.default_rng(1)
    grey = ImageRecord(rng.random((1, 20, 30), dtype=np.float32) * 100, 2)
    out = preprocess_image(grey, size=(16, 16))
    assert out.shape == (1, 16, 16) and out.dtype == np.float32
    assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1) < 1e-4

    out3 = preprocess_image(grey, size=(8, 12), channels=3, normalize="minmax")
    assert out3.shape == (3, 8, 12)
    assert out3.min() == 0 and out3.max() == 1
    np.testing.assert_array_equal(out3[0], out3[2])

    rgb = ImageRecord(np.stack([np.full((4, 4), v, np.float32) for v in (100, 50, 10)]), 2)
    lum = preprocess_image(rgb, size=(4, 4), channels=1, normalize="none")
    np.testing.assert_allclose(lum, 0.299 * 100 + 0.587 * 50 + 0.114 * 10, rtol=1e-6)

    const = ImageRecord(np.full((1, 5, 5), 7, np.float32), 2)
    for how in ("zscore", "minmax"):
        z = preprocess_image(const, size=(3, 3), normalize=how)
        assert np.isfinite(z).all() and not z.any()


def test_preprocess_3d_resize() -> None:
    rng = np.random.default_rng(2)
    vol = ImageRecord(rng.random((1, 10, 16, 6), dtype=np.float32), 3)
    out = preprocess_image(vol, size=(8, 8, 8))
    assert out.shape == (1, 8, 8, 8)
    assert np.isfinite(out).all()


def test_preprocess_dims_and_channel_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "v.npy"
    np.save(p, np.zeros((4, 5, 6), np.float32))
    rec = read_image(p)
    with pytest.raises(DataError) as ei:
        preprocess_image(rec, size=(8, 8))
    assert_data_error(ei, p)
    assert "3D" in str(ei.value) and "2 value" in str(ei.value)

    q = tmp_path / "four.npy"
    np.save(q, np.zeros((4, 4), np.float32))
    four = read_image(q)
    four.array = np.zeros((2, 4, 4), np.float32)  # a 2-channel image cannot become 1 or 3
    with pytest.raises(DataError) as ei:
        preprocess_image(four, size=(4, 4), channels=3)
    assert_data_error(ei, q)
