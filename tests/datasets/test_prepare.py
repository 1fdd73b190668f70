"""`fusiondx prepare` and the adapter registry behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.datasets.prepare import ADAPTERS, dataset_name, options_of, prepare_dataset
from fusiondx.errors import ConfigError
from tests.datasets.public_layouts import PTBXL_BROKEN

runner = CliRunner()


def test_names_aliases_and_typos() -> None:
    assert dataset_name("PTB-XL") == "ptbxl" and dataset_name("nih") == "nih_cxr"
    assert dataset_name("mimic") == "mimic_iv"
    with pytest.raises(ConfigError, match="Did you mean 'ptbxl'"):
        dataset_name("ptbx")


@pytest.mark.parametrize("dataset", list(ADAPTERS))
def test_every_adapter_documents_its_options(dataset: str) -> None:
    opts = options_of(dataset)
    assert "out" not in opts and "progress" not in opts
    help_text = runner.invoke(app, ["prepare", "--help"]).output
    for o in opts:  # every adapter option can be given on the command line
        assert "--" + o.replace("_", "-") in help_text or (o == "report" and "--no-report" in help_text)


def test_option_of_another_dataset_is_an_error(ptbxl_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--hours does not apply to ptbxl") as err:
        prepare_dataset("ptbxl", ptbxl_root, tmp_path, hours=24)
    assert err.value.fix and "--labels" in err.value.fix


def test_cli_help_has_example() -> None:
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "fusiondx prepare" in result.output


def test_cli_writes_reports_skipped_and_next_step(ptbxl_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ptbxl" / "cases.csv"
    result = runner.invoke(app, ["prepare", "ptbxl", str(ptbxl_root), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / "ptbxl.yaml").is_file() and (out.parent / "skipped.csv").is_file()
    assert f"{len(PTBXL_BROKEN)} skipped" in result.output
    for rid in PTBXL_BROKEN:
        assert f"{rid} " in result.output or f"│ {rid}" in result.output
    assert "fusiondx study" in result.output and "ptbxl.yaml" in result.output


def test_cli_layout_error_is_one_paragraph(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prepare", "nih_cxr", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Data_Entry_2017" in result.output and "Fix:" in result.output
    assert "Traceback" not in result.output
