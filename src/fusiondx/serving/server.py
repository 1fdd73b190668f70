"""Starting the service: :func:`serve` runs uvicorn with ``--workers`` processes, each building
its app with :func:`app_from_env` from the settings passed down in environment variables (a
worker process imports the app by name, so the settings cannot travel as arguments).

Several workers each listen on a socket of their own, bound to the same port with
``SO_REUSEPORT`` (Linux and the BSDs), so the kernel spreads new connections over them. Under
uvicorn's own ``workers=`` they would share one listening socket, and the worker whose event
loop wakes first accepts every connection that is waiting: measured with 8 keep-alive clients
(`python -m bench serve --workers 2`), one worker used 5.2 s of CPU and the other none, and two
workers answered no faster than one.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
from pathlib import Path
from typing import Any

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
    app = create_app(service, settings, owns_service=True)
    # What is loaded by now (the model, the graphs, the libraries) lives as long as the worker:
    # frozen out of the garbage collector's reach, a full collection no longer walks all of it
    # in the middle of a request.
    gc.freeze()
    return app


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
    options: dict[str, Any] = {
        "app": "fusiondx.serving.server:app_from_env",
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        # No "Server: uvicorn" banner; a request's size is bounded by the app's own limit.
        "server_header": False,
        # A log line per request costs the event loop as much as parsing the request;
        # errors are still logged by the app.
        "access_log": False,
    }
    try:
        if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
            _run_workers(options, workers)
        else:
            uvicorn.run(**options, workers=workers)
    finally:
        if graphs is not None:
            shutil.rmtree(graphs, ignore_errors=True)


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(options: dict[str, Any]) -> None:
    """One server process on its own ``SO_REUSEPORT`` socket (see the module docstring)."""
    import uvicorn

    sock = _listening_socket(options["host"], options["port"], reuse_port=True)
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


def _run_workers(options: dict[str, Any], workers: int) -> None:
    """``workers`` processes of :func:`_worker` until interrupted; all stop if one dies."""
    import multiprocessing
    import signal
    import time

    from fusiondx.errors import RunError

    # The port must be free first: SO_REUSEPORT would not say that another program holds it.
    try:
        _listening_socket(options["host"], options["port"], reuse_port=False).close()
    except OSError as e:
        raise RunError(
            f"Cannot listen on {options['host']}:{options['port']} ({e.strerror}).",
            fix="choose another --port, or stop the program that holds this one",
        ) from None
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(options,), daemon=False) for _ in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(p.is_alive() for p in procs):
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopping:
        codes = [p.exitcode for p in procs]
        raise RunError(
            f"A server worker stopped (exit codes {codes}); the other workers were stopped too.",
            fix="see the error above it; rerun with --workers 1 to see it alone",
        )
