"""`fusiondx serve`: a trained run as a web service (FastAPI + ONNX Runtime) with a page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fusiondx.cli._app import app, console, guard
from fusiondx.errors import RunError


@app.command()
def serve(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run folder written by `fusiondx fit`, or a study folder (its winner is served)."
        ),
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes, each with the model loaded.")
    ] = 1,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="FUSIONDX_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on /predict (or set FUSIONDX_TOKEN).",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.01, help="Largest request body, in MB.")
    ] = 20.0,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="Allow browser pages of this origin to call the API (repeatable); none: CORS "
            "closed.",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="ONNX Runtime threads per request (default 1)."),
    ] = None,
) -> None:
    """Serve a trained run: POST /predict (multipart upload of one case), POST /predict/batch
    (JSON), GET /health, GET /model (the model card) and the clinician page at /.

    Inference runs in ONNX Runtime (the run is exported to model.onnx first if it has none);
    every upload is checked by content and decoded by the run's own preprocessing. Needs
    `pip install 'fusiondx[serve]'`.

    Example: `fusiondx serve demo_out/study --port 8000` (after `make demo`: its winner), or
    `fusiondx serve runs/demo --token s3cret`
    """

    def run() -> None:
        try:
            from fusiondx.serving.server import resolve_run
            from fusiondx.serving.server import serve as start
        except ImportError as e:
            raise RunError(
                f"`fusiondx serve` needs FastAPI and uvicorn ({e.name} is not installed).",
                fix="pip install 'fusiondx[serve]'",
            ) from None
        served, which = resolve_run(run_dir)
        if not (served / "config.yaml").is_file():
            raise RunError(
                f"'{run_dir}' is not a run folder (no config.yaml) nor a study folder (no "
                "results.json).",
                file=run_dir,
                fix="pass a folder written by `fusiondx fit` or `fusiondx study`, e.g. "
                "demo_out/study",
            )
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        console.print(
            f"Serving [bold]{served}[/]{f' ({which})' if which else ''} at "
            f"[bold]http://{shown}:{port}/[/] "
            f"({workers} worker(s){', bearer token required' if token else ''}); Ctrl+C stops."
        )
        if host not in ("127.0.0.1", "::1", "localhost") and not token:
            console.print(
                "[yellow]note:[/] listening beyond this machine without --token: anyone who can "
                "reach the port can send cases"
            )
        os.environ.pop("FUSIONDX_TOKEN", None)  # passed on explicitly below
        start(
            served,
            host=host,
            port=port,
            workers=workers,
            token=token,
            max_upload_mb=max_upload_mb,
            cors_origins=tuple(cors_origin or ()),
            threads=threads,
        )

    guard(run)
