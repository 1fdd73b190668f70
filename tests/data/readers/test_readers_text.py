"""Text reading (inline or .txt files) and cleaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusiondx.data.preprocessors.text import clean_text
from fusiondx.data.readers import read_text
from fusiondx.errors import DataError


def test_inline_text_is_returned_as_is() -> None:
    assert read_text("Sinus rhythm. Normal ECG.", root=None) == "Sinus rhythm. Normal ECG."


def test_txt_path_relative_to_root_and_latin1(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("Befund: unauffällig", encoding="utf-8")
    assert read_text("notes/a.txt", root=tmp_path) == "Befund: unauffällig"

    (tmp_path / "b.TXT").write_bytes("Herzgröße normal".encode("latin-1"))
    assert read_text(str(tmp_path / "b.TXT"), root=None) == "Herzgröße normal"


def test_missing_txt_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as ei:
        read_text("reports/none.txt", root=tmp_path)
    msg = str(ei.value)
    assert str(tmp_path / "reports" / "none.txt") in msg
    assert "Fix:" in msg


def test_clean_text() -> None:
    raw = "  ＣＴ\tshows\x00 a\u200b  Mass\r\n\n  in the LUNG\ufb01  "
    assert clean_text(raw) == "ct shows a mass in the lungfi"
    assert clean_text(raw, lowercase=False) == "CT shows a Mass in the LUNGfi"
    assert clean_text("") == ""
