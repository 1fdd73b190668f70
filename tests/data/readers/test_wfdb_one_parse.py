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
