"""The command line: every command documents an example; list and validate work."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app

runner = CliRunner()
COMMANDS = [
    "validate",
    "fit",
    "evaluate",
    "predict",
    "export",
    "distill",
    "explain",
    "serve",
    "suggest",
    "federate",
    "pretrain",
    "retrieve",
    "list",
    "cohort",
    "interop-example",
    "study",
    "search",
    "demo",
    "prepare",
]

# `fusiondx --help` lists the commands in the order of the workflow. They are spread over the
# modules of fusiondx/cli/ and register themselves on import, so this order rests on the order of
# the imports in fusiondx/cli/__init__.py.
HELP_ORDER = [
    "validate",
    "fit",
    "evaluate",
    "predict",
    "export",
    "distill",
    "explain",
    "serve",
    "suggest",
    "federate",
    "pretrain",
    "retrieve",
    "list",
    "cohort",
    "interop-example",
    "prepare",
    "study",
    "search",
    "demo",
]


def test_help_lists_the_commands_in_workflow_order() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(
        r"^\W*([a-z][a-z-]*) {2,}\S", result.output.split("Commands")[1], re.MULTILINE
    )
    assert listed == HELP_ORDER


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "fusiondx" in result.output


@pytest.mark.parametrize(
    "what",
    [
        "encoders",
        "fusions",
        "heads",
        "adapters",
        "tasks",
        "readers",
        "references",
        "objectives",
        "acquisitions",
    ],
)
def test_list(what: str) -> None:
    result = runner.invoke(app, ["list", what])
    assert result.exit_code == 0
    expected = {
        "encoders": "bilstm_attention",
        "fusions": "late_average",
        "heads": "classification",
        "adapters": "ptbxl",
        "tasks": "multilabel",
        "readers": "dicom_series",
        "references": "tfidf",
        "objectives": "contrastive",
        "acquisitions": "least_confident",
    }[what]
    assert expected in result.output


def test_list_shows_the_aliases_old_configs_use() -> None:
    result = runner.invoke(app, ["list", "encoders", "signal_*"])
    assert result.exit_code == 0 and "signal_cnn" in result.output and "cnn1d" in result.output


def test_list_typo_suggests() -> None:
    result = runner.invoke(app, ["list", "fusion"])
    assert result.exit_code == 2 and "Did you mean 'fusions'" in result.output


def test_validate_fit_evaluate_predict(quick_config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(quick_config))
    ok = runner.invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "train" in ok.output
    fit = runner.invoke(app, ["fit", str(path), "--quiet"])
    assert fit.exit_code == 0, fit.output
    run = Path(quick_config["output_dir"]) / "quick"
    # rich wraps a long path at the console width: compare without line breaks.
    assert "auroc" in fit.output and str(run) in fit.output.replace("\n", "")
    ev = runner.invoke(app, ["evaluate", str(run)])
    assert ev.exit_code == 0 and "test.json" in ev.output
    out = tmp_path / "p.csv"
    pr = runner.invoke(
        app, ["predict", str(run), "--data", quick_config["data"]["manifest"], "--out", str(out)]
    )
    assert pr.exit_code == 0 and out.is_file()


def test_missing_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Fix:" in result.output and "Traceback" not in result.output
