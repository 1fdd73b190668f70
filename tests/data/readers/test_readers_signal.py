"""Signal readers and preprocessing: WFDB records written with wfdb, CSV and .npy files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusiondx.data.preprocessors.signal import preprocess_signal
from fusiondx.data.readers import SignalRecord, read_signal
from fusiondx.errors import DataError

# ../shared/data next to the repository root.
MITDB_100 = Path(__file__).resolve().parents[4] / "shared" / "data" / "wfdb_sample" / "100"


def assert_data_error(exc_info: pytest.ExceptionInfo[DataError], path: Path | None) -> None:
    msg = str(exc_info.value)
    if path is not None:
        assert str(path) in msg, msg
    assert "Fix:" in msg, msg


def write_wfdb(
    folder: Path, *, n: int = 1000, fs: int = 500, name: str = "rec", nan_at: slice | None = None
) -> np.ndarray:
    """Write a 3-lead record in folder; return the physical signal (samples, leads)."""
    # wfdb trips pandas deprecation warnings on import and write; they are not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import wfdb

    t = np.arange(n) / fs
    sig = np.stack([np.sin(2 * np.pi * 5 * t), 0.5 * np.cos(2 * np.pi * 3 * t), 0.1 * t], axis=1)
    if nan_at is not None:
        sig[nan_at, 0] = np.nan  # written as WFDB's invalid-sample value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV", "mV", "mV"],
            sig_name=["I", "II", "V1"],
            p_signal=sig,
            fmt=["16", "16", "16"],
            adc_gain=[1000.0, 1000.0, 1000.0],
            baseline=[0, 0, 0],
            write_dir=str(folder),
        )
    return sig


def test_wfdb_roundtrip(tmp_path: Path) -> None:
    sig = write_wfdb(tmp_path)
    for p in (tmp_path / "rec.hea", tmp_path / "rec", tmp_path / "rec.dat"):
        rec = read_signal(p)
        assert rec.array.shape == (3, 1000)
        assert rec.array.dtype == np.float32
        assert rec.rate == 500.0
        assert rec.lead_names == ["I", "II", "V1"]
        np.testing.assert_allclose(rec.array, sig.T, atol=1e-3)  # gain 1000/mV


def test_wfdb_resample_crop_pad(tmp_path: Path) -> None:
    write_wfdb(tmp_path)
    rec = read_signal(tmp_path / "rec.hea")
    out = preprocess_signal(rec, rate=100, length=200, normalize="none")
    assert out.shape == (3, 200)
    # 1000 samples at 500 Hz = 2 s = 200 samples at 100 Hz: nothing padded, no crop.
    assert np.abs(out[:, -5:]).sum() > 0
    # The 5 Hz sine survives 100 Hz sampling; compare with the true values.
    t = np.arange(200) / 100
    np.testing.assert_allclose(out[1, 20:180], 0.5 * np.cos(2 * np.pi * 3 * t[20:180]), atol=0.02)

    padded = preprocess_signal(rec, rate=100, length=300, normalize="none", min_fraction=0.5)
    assert padded.shape == (3, 300)
    assert not padded[:, 200:].any()

    cropped = preprocess_signal(rec, rate=None, length=400, crop="center", normalize="none")
    np.testing.assert_array_equal(cropped, rec.array[:, 300:700])
    start = preprocess_signal(rec, rate=500, length=400, normalize="none")
    np.testing.assert_array_equal(start, rec.array[:, :400])


def test_wfdb_missing_and_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "ghost.hea"
    with pytest.raises(DataError) as ei:
        read_signal(p)
    assert_data_error(ei, p)
    assert "not found" in str(ei.value)

    write_wfdb(tmp_path)
    (tmp_path / "rec.dat").unlink()
    with pytest.raises(DataError) as ei:
        read_signal(tmp_path / "rec.hea")
    assert_data_error(ei, tmp_path / "rec.hea")
    assert "rec.dat" in str(ei.value)

    # Header intact, data file cut short.
    write_wfdb(tmp_path, name="cut")
    dat = tmp_path / "cut.dat"
    dat.write_bytes(dat.read_bytes()[:37])
    with pytest.raises(DataError) as ei:
        read_signal(tmp_path / "cut.hea")
    assert_data_error(ei, tmp_path / "cut.hea")
    assert "wfdb" in str(ei.value)

    bad = tmp_path / "broken.hea"
    bad.write_text("this is not a header\n")
    with pytest.raises(DataError) as ei:
        read_signal(bad)
    assert_data_error(ei, bad)
    assert "wfdb" in str(ei.value)


def test_lead_count_and_selection(tmp_path: Path) -> None:
    write_wfdb(tmp_path)
    rec = read_signal(tmp_path / "rec.hea")
    with pytest.raises(DataError) as ei:
        preprocess_signal(rec, rate=None, length=1000, leads=12)
    assert_data_error(ei, tmp_path / "rec.hea")
    assert "3 lead(s)" in str(ei.value) and "expects 12" in str(ei.value)

    out = preprocess_signal(rec, rate=None, length=1000, lead_names=["V1", "i"], normalize="none")
    np.testing.assert_array_equal(out, rec.array[[2, 0]])

    with pytest.raises(DataError) as ei:
        preprocess_signal(rec, rate=None, length=1000, lead_names=["V2"])
    assert_data_error(ei, tmp_path / "rec.hea")
    assert "I, II, V1" in str(ei.value)


def test_too_short(tmp_path: Path) -> None:
    write_wfdb(tmp_path, n=160, fs=50)  # 3.2 s
    rec = read_signal(tmp_path / "rec.hea")
    with pytest.raises(DataError) as ei:
        preprocess_signal(rec, rate=100, length=1000)
    msg = str(ei.value)
    assert_data_error(ei, tmp_path / "rec.hea")
    assert "3.2 s long" in msg and "5.0 s" in msg


def test_wfdb_invalid_samples_become_nan_then_interpolated(tmp_path: Path) -> None:
    sig = write_wfdb(tmp_path, n=100, fs=100, nan_at=slice(10, 13))
    rec = read_signal(tmp_path / "rec")
    assert np.isnan(rec.array[0, 10:13]).all() and not np.isnan(rec.array[1:]).any()
    out = preprocess_signal(rec, rate=None, length=100, normalize="none")
    # Lead I is a 5 Hz sine: the gap is bridged by a straight line between its ends.
    expected = np.interp(np.arange(10, 13), [9, 13], [sig[9, 0], sig[13, 0]])
    np.testing.assert_allclose(out[0, 10:13], expected, atol=2e-3)


def test_nan_interpolation_and_errors() -> None:
    x = np.array([[0.0, np.nan, 2.0, np.nan, np.nan, 5.0], [1, 1, 1, 1, 1, 1]], np.float32)
    rec = SignalRecord(x, 10.0, ["A", "B"], Path("s.npy"))
    out = preprocess_signal(rec, rate=None, length=6, normalize="none")
    np.testing.assert_allclose(out[0], [0, 1, 2, 3, 4, 5])

    normed = preprocess_signal(rec, rate=None, length=6)
    assert np.isfinite(normed).all()
    assert not normed[1].any()  # flat lead -> zeros
    assert abs(float(normed[0].mean())) < 1e-6 and abs(float(normed[0].std()) - 1) < 1e-5

    allnan = SignalRecord(
        np.array([[np.nan] * 4, [1, 2, 3, 4]], np.float32), 10.0, ["A", "B"], Path("s.npy")
    )
    with pytest.raises(DataError) as ei:
        preprocess_signal(allnan, rate=None, length=4)
    assert_data_error(ei, Path("s.npy"))
    assert "'A'" in str(ei.value)

    inf = SignalRecord(np.array([[1, np.inf, 3, 4]], np.float32), 10.0, ["A"], Path("s.npy"))
    with pytest.raises(DataError) as ei:
        preprocess_signal(inf, rate=None, length=4)
    assert_data_error(ei, Path("s.npy"))


def test_csv_signal(tmp_path: Path) -> None:
    p = tmp_path / "ecg.csv"
    p.write_text("time,I,II\n0.0,1.0,2.0\n0.01,3.0,\n0.02,5.0,6.0\n0.03,7.0,8.0\n")
    rec = read_signal(p, source_rate=100)
    assert rec.lead_names == ["I", "II"]
    assert rec.rate == 100.0
    np.testing.assert_array_equal(rec.array[0], [1, 3, 5, 7])
    assert np.isnan(rec.array[1, 1])
    out = preprocess_signal(rec, rate=100, length=4, normalize="none")
    np.testing.assert_allclose(out[1], [2, 4, 6, 8])

    # No source rate: readable, but resampling needs it.
    norate = read_signal(p)
    assert norate.rate is None
    assert preprocess_signal(norate, rate=None, length=4).shape == (2, 4)
    with pytest.raises(DataError) as ei:
        preprocess_signal(norate, rate=100, length=4)
    assert_data_error(ei, p)
    assert "source_rate" in str(ei.value)

    bad = tmp_path / "bad.csv"
    bad.write_text("I,II\n1,2\n3,abc\n")
    with pytest.raises(DataError) as ei:
        read_signal(bad, source_rate=100)
    assert_data_error(ei, bad)
    assert "abc" in str(ei.value)

    nohdr = tmp_path / "nohdr.csv"
    nohdr.write_text("1,2\n3,4\n")
    with pytest.raises(DataError) as ei:
        read_signal(nohdr, source_rate=100)
    assert_data_error(ei, nohdr)


def test_npy_signal(tmp_path: Path) -> None:
    a = np.arange(20, dtype=np.float64).reshape(2, 10)
    p = tmp_path / "s.npy"
    np.save(p, a)
    rec = read_signal(p, source_rate=250)
    assert rec.array.shape == (2, 10) and rec.rate == 250.0
    assert rec.lead_names == ["0", "1"]
    one = tmp_path / "one.npy"
    np.save(one, np.arange(5.0))
    assert read_signal(one).array.shape == (1, 5)

    transposed = tmp_path / "t.npy"
    np.save(transposed, a.T)
    with pytest.raises(DataError) as ei:
        read_signal(transposed)
    assert_data_error(ei, transposed)

    missing = tmp_path / "missing.npy"
    with pytest.raises(DataError) as ei:
        read_signal(missing)
    assert_data_error(ei, missing)

    rec_none = read_signal(p)
    with pytest.raises(DataError) as ei:
        preprocess_signal(rec_none, rate=500, length=20)
    assert_data_error(ei, p)
    assert "preprocessing.source_rate" in str(ei.value)


@pytest.mark.realdata
def test_mitdb_record_100() -> None:
    if not MITDB_100.with_suffix(".hea").exists():
        pytest.skip("shared WFDB sample not present")
    rec = read_signal(MITDB_100)
    assert rec.array.shape[0] == 2
    assert rec.rate == 360.0
    assert rec.lead_names == ["MLII", "V5"]
    out = preprocess_signal(rec, rate=100, length=1000, leads=2)
    assert out.shape == (2, 1000) and np.isfinite(out).all()
