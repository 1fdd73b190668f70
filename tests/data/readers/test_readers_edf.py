"""EDF/BDF reader: files written with edfio, read back through the registry lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edfio import Bdf, BdfSignal, Edf, EdfAnnotation, EdfSignal

from fusiondx.data.preprocessors.signal import preprocess_signal
from fusiondx.data.readers import lead_count, read_signal
from fusiondx.errors import DataError

RANGE = (-500.0, 500.0)


def _signals(
    rng: np.random.Generator, names: list[str], rate: int, seconds: int = 2, cls: type = EdfSignal
) -> tuple[list, np.ndarray]:
    data = np.clip(rng.normal(0, 60, (len(names), rate * seconds)), -450, 450)
    return [
        cls(d, rate, label=n, physical_range=RANGE) for d, n in zip(data, names, strict=True)
    ], data


def _msg(ei: pytest.ExceptionInfo[DataError], path: Path) -> str:
    msg = str(ei.value)
    assert str(path) in msg and "Fix:" in msg, msg
    return msg


def test_edf_plus_annotations_skipped_rate_and_names_from_file(tmp_path: Path) -> None:
    sigs, data = _signals(np.random.default_rng(0), ["Fp1", "Fp2", "Cz"], 128)
    path = tmp_path / "rec.edf"
    Edf(sigs, annotations=[EdfAnnotation(0.2, 0.5, "artifact")]).write(path)
    rec = read_signal(path, source_rate=999)  # the header's rate wins over source_rate
    assert rec.rate == 128.0
    assert rec.lead_names == ["Fp1", "Fp2", "Cz"]  # the annotation channel is not a lead
    assert rec.array.shape == (3, 256) and rec.array.dtype == np.float32
    np.testing.assert_allclose(rec.array, data, atol=1000 / 65535)
    assert lead_count(path) == 3  # from the header, annotation channel left out


def test_bdf_24_bit_and_format_told_by_content(tmp_path: Path) -> None:
    sigs, data = _signals(np.random.default_rng(1), ["O1", "O2"], 256, cls=BdfSignal)
    path = tmp_path / "rec.bdf"
    Bdf(sigs).write(path)
    rec = read_signal(path)
    assert rec.rate == 256.0 and rec.lead_names == ["O1", "O2"]
    np.testing.assert_allclose(rec.array, data, atol=1000 / 2**24 * 1.01)  # 24-bit steps
    # The same bytes under the other suffix: the header says BDF, and BDF it is read as.
    other = tmp_path / "rec_renamed.edf"
    other.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(read_signal(other).array, rec.array)


def _mixed(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    eeg, _ = _signals(rng, ["Fp1", "Fp2"], 128)
    spo2, _ = _signals(rng, ["SpO2"], 1)
    path = tmp_path / "psg.edf"
    Edf([eeg[0], spo2[0], eeg[1]]).write(path)
    return path


def test_mixed_rates_are_refused_naming_the_channels(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    with pytest.raises(DataError) as ei:
        read_signal(path)
    msg = _msg(ei, path)
    assert "Fp1, Fp2 at 128 Hz" in msg and "SpO2 at 1 Hz" in msg and "lead_names" in msg

    with pytest.raises(DataError) as ei:  # lead_names crossing rates: still refused, and said
        read_signal(path, lead_names=["Fp1", "SpO2"])
    assert "do not share one rate" in _msg(ei, path)


def test_lead_names_pick_the_channels_of_one_rate(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    rec = read_signal(path, lead_names=["fp2"])  # case-insensitive, as lead selection is
    assert rec.lead_names == ["Fp1", "Fp2"] and rec.rate == 128.0
    out = preprocess_signal(rec, rate=64, length=128, lead_names=["fp2"], normalize="none")
    assert out.shape == (1, 128)


def test_truncated_and_discontinuous_are_refused(tmp_path: Path) -> None:
    sigs, _ = _signals(np.random.default_rng(3), ["C3", "C4"], 128, seconds=4)
    path = tmp_path / "full.edf"
    Edf(sigs).write(path)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(path.read_bytes()[:-300])  # inside the last data record
    with pytest.raises(DataError) as ei:
        read_signal(cut)
    assert "cut short" in _msg(ei, cut)

    whole_records = tmp_path / "short.edf"
    whole_records.write_bytes(path.read_bytes()[: 256 * 3 + 2 * 2 * 128])  # header + 1 of 4 records
    with pytest.raises(DataError) as ei:
        read_signal(whole_records)
    assert "cut short" in _msg(ei, whole_records)

    gaps = bytearray(path.read_bytes())
    gaps[192:197] = b"EDF+D"
    d = tmp_path / "gaps.edf"
    d.write_bytes(bytes(gaps))
    with pytest.raises(DataError) as ei:
        read_signal(d)
    assert "EDF+D" in _msg(ei, d)
