"""The WFDB reader parses a header once and reads the samples from that parse: the same arrays
as ``wfdb.rdrecord`` for every sample format it writes, and multi-segment records still read."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusiondx.data.readers.signal.wfdb import _read_record

wfdb = pytest.importorskip("wfdb")


@pytest.mark.parametrize("fmt", ["16", "212", "80", "24", "32"])
def test_one_parse_reads_what_rdrecord_reads(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(int(fmt))
    digital = rng.integers(-2000, 2000, (700, 3))
    if fmt == "80":
        digital = digital // 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wfdb.wrsamp(
            "rec",
            fs=250,
            units=["mV"] * 3,
            sig_name=["I", "II", "V1"],
            d_signal=digital,
            fmt=[fmt] * 3,
            adc_gain=[200.0, 400.0, 1000.0],
            baseline=[0, 7, -3],
            write_dir=str(tmp_path),
        )
        expected = wfdb.rdrecord(str(tmp_path / "rec"), physical=True)
    got = _read_record(tmp_path / "rec.hea", tmp_path)
    np.testing.assert_array_equal(got.array, expected.p_signal.T.astype(np.float32))
    assert got.rate == 250.0 and got.lead_names == ["I", "II", "V1"]


def test_header_without_length_reads_as_rdrecord(tmp_path: Path) -> None:
    """No sample count in the header: rdrecord infers it from the data file (the public path)."""
    digital = np.arange(600).reshape(300, 2) - 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wfdb.wrsamp(
            "rec",
            fs=100,
            units=["mV", "mV"],
            sig_name=["a", "b"],
            d_signal=digital,
            fmt=["16", "16"],
            adc_gain=[100.0, 100.0],
            baseline=[0, 0],
            write_dir=str(tmp_path),
        )
    hea = tmp_path / "rec.hea"
    first, *rest = hea.read_text().splitlines()
    hea.write_text("\n".join([" ".join(first.split()[:3]), *rest]) + "\n")
    got = _read_record(hea, tmp_path)
    np.testing.assert_allclose(got.array, digital.T / 100.0, rtol=0, atol=1e-6)


def _write16(folder: Path, digital: np.ndarray, **kw: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = digital.shape[1]
        wfdb.wrsamp(
            "rec",
            fs=kw.get("fs", 500),
            units=["mV"] * n,
            sig_name=[f"L{i}" for i in range(n)],
            d_signal=digital,
            fmt=[str(kw.get("fmt", "16"))] * n,
            adc_gain=list(kw.get("gains", [1000.0] * n)),  # type: ignore[call-overload]
            baseline=list(kw.get("baselines", [0] * n)),  # type: ignore[call-overload]
            write_dir=str(folder),
        )
    return folder / "rec.hea"


def _rdrecord(hea: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = wfdb.rdrecord(str(hea.with_suffix("")), physical=True)
    return np.ascontiguousarray(rec.p_signal.T, dtype=np.float32)


@pytest.mark.parametrize(
    "edit",
    ["as_written", "gain_zero", "no_baseline_adc_zero", "missing_samples", "comments", "long_dat"],
)
def test_format16_without_wfdb_equals_rdrecord(tmp_path: Path, edit: str) -> None:
    """The plain format-16 layout (PTB-XL's) is read without wfdb's header parse, to the same
    values, rate and lead names as ``rdrecord`` under each variation of its header and data."""
    from fusiondx.data.readers.signal.wfdb import _format16

    digital = np.random.default_rng(3).integers(-3000, 3000, (400, 3))
    if edit == "missing_samples":
        digital[[5, 77], [0, 2]] = -32768
    hea = _write16(tmp_path, digital, gains=[200.0, 400.0, 1000.0], baselines=[0, 7, -3])
    lines = hea.read_text().splitlines()
    if edit == "gain_zero":  # a gain of 0 means 200
        lines[1] = lines[1].replace(" 200.0(0)/mV", " 0(0)/mV")
    elif edit == "no_baseline_adc_zero":  # no baseline: ADC zero stands in
        parts = lines[2].split()
        parts[2], parts[5] = "400.0/mV", "11"
        lines[2] = " ".join(parts)
    elif edit == "comments":
        lines = ["# exported by a cart", lines[0], "# leads follow", *lines[1:], "# age: 61"]
    elif edit == "long_dat":  # data beyond the header's length is not read
        with (tmp_path / "rec.dat").open("ab") as f:
            f.write(np.arange(30, dtype="<i2").tobytes())
    hea.write_text("\n".join(lines) + "\n")
    fast = _format16(hea)
    assert fast is not None
    np.testing.assert_array_equal(fast.array, _rdrecord(hea))
    assert fast.rate == 500.0 and fast.lead_names == ["L0", "L1", "L2"]
    assert np.isnan(fast.array).any() == (edit == "missing_samples")


@pytest.mark.parametrize("layout", ["212", "short_dat", "two_files"])
def test_other_layouts_are_left_to_wfdb(tmp_path: Path, layout: str) -> None:
    from fusiondx.data.readers.signal.wfdb import _format16

    digital = np.random.default_rng(4).integers(-2000, 2000, (300, 2))
    hea = _write16(tmp_path, digital, fmt="212" if layout == "212" else "16")
    if layout == "short_dat":
        dat = tmp_path / "rec.dat"
        dat.write_bytes(dat.read_bytes()[:-2])
    elif layout == "two_files":
        lines = hea.read_text().splitlines()
        (tmp_path / "rec.dat").rename(tmp_path / "a.dat")
        lines[1] = lines[1].replace("rec.dat", "a.dat")
        lines[2] = lines[2].replace("rec.dat", "b.dat")
        (tmp_path / "b.dat").write_bytes((tmp_path / "a.dat").read_bytes())
        hea.write_text("\n".join(lines) + "\n")
    assert _format16(hea) is None
