"""Starting the service: :func:`serve` runs uvicorn with ``--workers`` processes, each building
its app with :func:`app_from_env` from the settings passed down in environment variables (a
worker process imports the app by name, so the settings cannot travel as arguments)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fastapi import FastAPI

from fusiondx.serving.app import Settings, create_app
from fusiondx.serving.service import Service

ENV_RUN = "FUSIONDX_SERVE_RUN"
ENV_TOKEN = "FUSIONDX_TOKEN"
ENV_MAX_MB = "FUSIONDX_SERVE_MAX_UPLOAD_MB"
ENV_CORS = "FUSIONDX_SERVE_CORS"
ENV_WORKERS = "FUSIONDX_SERVE_WORKERS"
ENV_THREADS = "FUSIONDX_SERVE_THREADS"
ENV_GRAPHS = "FUSIONDX_SERVE_GRAPHS"  # the split graphs built once, or "" for the whole model


def app_from_env() -> FastAPI:
    """The app of one worker, from the ``FUSIONDX_SERVE_*`` variables :func:`serve` sets."""
    threads = os.environ.get(ENV_THREADS)
    graphs = os.environ.get(ENV_GRAPHS)
    service = Service(
        Path(os.environ[ENV_RUN]),
        threads=int(threads) if threads else None,
        workers=int(os.environ.get(ENV_WORKERS, "1")),
        split=graphs != "",
        graphs=Path(graphs) if graphs else None,
    )
    cors = tuple(o for o in os.environ.get(ENV_CORS, "").split(",") if o.strip())
    settings = Settings(
        max_upload_mb=float(os.environ.get(ENV_MAX_MB, "20")),
        token=os.environ.get(ENV_TOKEN) or None,
        cors_origins=cors,
    )
    return create_app(service, settings, owns_service=True)


def resolve_run(path: Path) -> tuple[Path, str | None]:
    """A run folder as given, or for a study folder (``results.json``) its winner's first
    replicate, with a line saying which entry that is."""
    import json

    from fusiondx.errors import RunError

    path = Path(path)
    results = path / "results.json"
    if (path / "config.yaml").is_file() or not results.is_file():
        return path, None
    r = json.loads(results.read_text())
    win = r.get("winner")
    entry = next((e for e in r.get("entries") or [] if e.get("id") == win), None)
    for run in (entry or {}).get("runs") or []:
        # Run folders are recorded as the study wrote them: absolute, or from its working dir.
        for cand in (Path(run["run_dir"]), path.parent / run["run_dir"]):
            if (cand / "config.yaml").is_file() and (cand / "model.pt").is_file():
                label = (entry or {}).get("label") or win
                return cand, f"the study's winner, {label} ({run['name']})"
    raise RunError(
        f"'{path}' is a study folder, but its winner '{win}' has no FusionDx run to serve "
        "(a scikit-learn reference, or its runs were moved).",
        file=path,
        fix=f"serve one run of the study: fusiondx serve {path / 'runs'}/<entry>/<replicate>",
    )


def prepare_run(run_dir: Path) -> Path:
    """Check the run loads and has its ONNX export (exported once here, not by every worker;
    none for a run whose every task generates text, which is served with PyTorch)."""
    from fusiondx.engine.rundir import RunDir
    from fusiondx.export import _is_exported_onnx, decoding_tasks, export_run

    run = RunDir(run_dir)
    _, model, state = run.load()
    tasks = [t["name"] for t in state["tasks"]]
    if len(decoding_tasks(model, tasks)) == len(tasks):
        return run.onnx_file
    if not _is_exported_onnx(run.onnx_file):
        export_run(run.path, progress=True, overwrite=True)
    return run.onnx_file


def prepare_graphs(run_dir: Path) -> Path | None:
    """The split graphs (:mod:`fusiondx.serving.split`) built once into a private temporary
    folder for every worker to load; None when the model does not split."""
    import tempfile

    from fusiondx.serving.service import _scratch
    from fusiondx.serving.split import split_run

    folder = Path(tempfile.mkdtemp(prefix="fusiondx-graphs-", dir=_scratch()))
    if split_run(run_dir, folder) is None:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return folder


def serve(
    run_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    token: str | None = None,
    max_upload_mb: float = 20.0,
    cors_origins: tuple[str, ...] = (),
    threads: int | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``run_dir`` until interrupted (see :mod:`fusiondx.serving`)."""
    import uvicorn

    prepare_run(run_dir)
    graphs = prepare_graphs(run_dir)
    os.environ[ENV_GRAPHS] = str(graphs) if graphs else ""
    os.environ[ENV_RUN] = str(Path(run_dir).resolve())
    os.environ[ENV_MAX_MB] = str(max_upload_mb)
    os.environ[ENV_WORKERS] = str(workers)
    if token:
        os.environ[ENV_TOKEN] = token
    if cors_origins:
        os.environ[ENV_CORS] = ",".join(cors_origins)
    if threads:
        os.environ[ENV_THREADS] = str(threads)
    try:
        uvicorn.run(
            "fusiondx.serving.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            # No "Server: uvicorn" banner; a request's size is bounded by the app's own limit.
            server_header=False,
            # A log line per request costs the event loop as much as parsing the request;
            # errors are still logged by the app.
            access_log=False,
        )
    finally:
        if graphs is not None:
            shutil.rmtree(graphs, ignore_errors=True)
