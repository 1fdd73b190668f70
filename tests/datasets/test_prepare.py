"""`fusiondx prepare` and the adapter registry behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.datasets.prepare import (
    ADAPTERS,
    dataset_name,
    options_of,
    parse_options,
    prepare_dataset,
)
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
        assert "--" + o.replace("_", "-") in help_text or (
            o == "report" and "--no-report" in help_text
        )


def test_option_of_another_dataset_is_an_error(ptbxl_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--hours does not apply to ptbxl") as err:
        prepare_dataset("ptbxl", ptbxl_root, tmp_path, hours=24)
    assert err.value.fix and "--labels" in err.value.fix


def test_cli_help_has_example() -> None:
    result = runner.invoke(app, ["prepare", "--help"])
    assert (
        result.exit_code == 0 and "Example" in result.output and "fusiondx prepare" in result.output
    )


def test_cli_writes_reports_skipped_and_next_step(ptbxl_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ptbxl" / "cases.csv"
    result = runner.invoke(app, ["prepare", "ptbxl", str(ptbxl_root), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (
        out.is_file()
        and (out.parent / "ptbxl.yaml").is_file()
        and (out.parent / "skipped.csv").is_file()
    )
    assert f"{len(PTBXL_BROKEN)} skipped" in result.output
    for rid in PTBXL_BROKEN:
        assert f"{rid} " in result.output or f"│ {rid}" in result.output
    said = result.output.replace("\n", "")  # rich wraps a long path at the console width
    assert "fusiondx study" in said and "ptbxl.yaml" in said


def test_cli_layout_error_is_one_paragraph(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prepare", "nih_cxr", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Data_Entry_2017" in result.output and "Fix:" in result.output
    assert "Traceback" not in result.output


# --- options generated from the adapter's signature -------------------------------------------


def test_command_line_options_follow_the_signature() -> None:
    opts = parse_options(
        "ptb-xl",
        [
            "--labels",
            "rhythm",
            "--min-count=3",
            "--min-likelihood",
            "50",
            "--drop-unlabelled",
            "--no-report",
            "--records",
            "500",
        ],
    )
    assert opts == {
        "labels": "rhythm",
        "min_count": 3,
        "min_likelihood": 50.0,
        "drop_unlabelled": True,
        "report": False,
        "records": 500,
    }
    assert parse_options("ptbxl", ["--report=no"]) == {"report": False}
    # a union type (labs: "auto" or itemids) stays text: the adapter parses it
    assert parse_options("mimic", ["--labs", "50912,50971", "--hours", "48"]) == {
        "labs": "50912,50971",
        "hours": 48,
    }
    assert parse_options("medmnist", []) == {}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lables", "rhythm"], "--lables does not apply to ptbxl. Did you mean '--labels'"),
        (["--records", "many"], "--records of ptbxl takes a whole number, got 'many'"),
        (["--labels"], "--labels needs a value"),
        (["--report=maybe"], "--report of ptbxl is yes or no"),
        (["rhythm"], "'rhythm' is not an option of ptbxl"),
        (["--hours", "24"], "--hours does not apply to ptbxl"),
    ],
)
def test_command_line_option_errors_say_what_and_how(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_options("ptbxl", args)
    assert err.value.fix


def test_cli_passes_adapter_options(ptbxl_root: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "prepare",
            "ptbxl",
            str(ptbxl_root),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--no-report",
            "--drop-unlabelled",
        ],
    )
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "o" / "ptbxl.yaml").read_text())
    assert "report" not in {m["name"] for m in cfg["modalities"]}


def test_cli_unknown_option_is_a_clear_error(ptbxl_root: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["prepare", "ptbxl", str(ptbxl_root), "--out", str(tmp_path / "o"), "--hour", "24"]
    )
    assert (
        result.exit_code == 2
        and "does not apply to ptbxl" in result.output
        and "Fix:" in result.output
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("dataset", list(ADAPTERS))
def test_help_lists_each_adapter_with_a_valid_example(dataset: str) -> None:
    entry = ADAPTERS.get(dataset)
    help_text = " ".join(runner.invoke(app, ["prepare", "--help"]).output.split())  # unwrapped
    assert (
        f"fusiondx prepare {dataset} {entry.meta['example']}" in help_text
        and entry.summary in help_text
    )
    example = entry.meta["example"].split()
    out = example.index("--out")
    parse_options(dataset, example[out + 2 :])  # the example's options are the adapter's own


def test_every_adapter_module_registers_one_adapter() -> None:
    import pkgutil

    import fusiondx.datasets as pkg

    modules = {m.name for m in pkgutil.walk_packages(pkg.__path__) if not m.name.startswith("_")}
    modules -= set(pkg.NOT_ADAPTERS)
    assert modules == {e.cls.__module__.rsplit(".", 1)[-1] for e in ADAPTERS.entries()}
