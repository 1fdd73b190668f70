"""One quick run, exported once by the CLI (model.onnx + MODEL_CARD.md), and a case of the
built-in cohort as the files a client would upload."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")


# Session-scoped: the API, browser and load tests share one training and one export.
@pytest.fixture(scope="session")
def served_run(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from typer.testing import CliRunner

    from fusiondx.cli import app
    from fusiondx.config import Config
    from fusiondx.engine.run import fit

    cfg = copy.deepcopy(quick_base)
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path_factory.mktemp("serve_runs"))
    cfg["train"]["epochs"] = 1
    run_dir = fit(Config.model_validate(cfg)).run_dir
    result = CliRunner().invoke(app, ["export", str(run_dir)])
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def service(served_run: Path) -> Any:
    from fusiondx.serving.service import Service

    svc = Service(served_run, threads=1)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def full_cases(cohort_dir: Path) -> pd.DataFrame:
    """Three rows of the cohort with every modality present."""
    df = pd.read_csv(cohort_dir / "manifest.csv")
    cols = ["image", "ecg", "report", "age", "sex", "crp", "troponin", "smoker"]
    return df.dropna(subset=cols).head(3).reset_index(drop=True)


@pytest.fixture(scope="module")
def upload(cohort_dir: Path) -> Any:
    """``upload(row, skip="")``: the row as multipart (files, data)."""
    return lambda row, skip="": _upload(row, cohort_dir, skip)


def _upload(row: pd.Series, root: Path, skip: str = "") -> tuple[list[Any], dict[str, str]]:
    """(files, data) of one cohort row as multipart fields, leaving out modality ``skip``."""
    files: list[Any] = []
    if skip != "cxr":
        files.append(("cxr", ("scan.png", (root / row.image).read_bytes(), "image/png")))
    if skip != "ecg":
        hea = root / row.ecg
        files.append(("ecg", ("rec.hea", hea.read_bytes(), "text/plain")))
        files.append(
            ("ecg", ("rec.dat", hea.with_suffix(".dat").read_bytes(), "application/octet-stream"))
        )
    data: dict[str, str] = {}
    if skip != "report":
        data["report"] = str(row.report)
    if skip != "labs":
        data.update(
            {
                c: str(row[c])
                for c in ("age", "sex", "crp", "troponin", "smoker")
                if pd.notna(row[c])
            }
        )
    return files, data


@pytest.fixture(scope="session")
def generating_run(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A run that diagnoses and also writes the findings as text (a generation head, which the
    ONNX graph leaves to PyTorch), exported by the CLI."""
    from typer.testing import CliRunner

    from fusiondx.cli import app
    from fusiondx.config import Config
    from fusiondx.engine.run import fit

    cfg = copy.deepcopy(quick_base)
    cfg["name"] = "writes"
    cfg["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    cfg["output_dir"] = str(tmp_path_factory.mktemp("serve_generating"))
    cfg["train"]["epochs"] = 1
    cfg["tasks"].append({"name": "findings", "head": "generation", "label": "findings_text"})
    run_dir = fit(Config.model_validate(cfg)).run_dir
    result = CliRunner().invoke(app, ["export", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "Not in the graph: task(s) findings" in result.output.replace("\n", " ")
    return run_dir


@pytest.fixture(scope="session")
def generating_service(generating_run: Path) -> Any:
    from fusiondx.serving.service import Service

    svc = Service(generating_run, threads=1)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def server(service: Any) -> Iterator[str]:
    """The real uvicorn server in a thread, on a free loopback port; its URL."""
    yield from _serve(service)


@pytest.fixture(scope="module")
def generating_server(generating_service: Any) -> Iterator[str]:
    yield from _serve(generating_service)


def _serve(service: Any) -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    from fusiondx.serving.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
