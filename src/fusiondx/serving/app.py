"""The FastAPI application: ``POST /predict``, ``POST /predict/batch``, ``GET /health``,
``GET /model`` (the model card) and ``GET /`` (the clinician page).

Safety lives here: the body size limit (counted as the bytes arrive, not trusted from a
header), the optional bearer token, CORS only when origins are given, and one exception handler
that turns every :class:`~fusiondx.errors.FusionDxError` into a 4xx ``{"error", "field", "fix"}``
and anything else into a 500 whose body holds no traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fusiondx.errors import FusionDxError
from fusiondx.serving.card import model_card
from fusiondx.serving.cases import CaseInput, from_form, from_json
from fusiondx.serving.errors import RequestError, body
from fusiondx.serving.service import Service

log = logging.getLogger("fusiondx.serving")

MAX_BATCH = 256


@dataclass(frozen=True)
class Settings:
    """How the app guards itself.

    Attributes:
        max_upload_mb: largest request body accepted, in MB (413 beyond).
        token: when set, /predict and /predict/batch need ``Authorization: Bearer <token>``.
        cors_origins: origins allowed to call the API from a browser (none: CORS closed).
    """

    max_upload_mb: float = 20.0
    token: str | None = None
    cors_origins: tuple[str, ...] = ()

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class _TooLarge(RequestError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request is larger than the server's limit of {limit / 1024 / 1024:g} MB.",
            fix="send smaller files (one case per request), or start the server with a larger "
            "--max-upload-mb",
            status=413,
        )


class BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes, by its Content-Length or, when that
    is absent or lies, while the bytes arrive."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return msg

        started = False

        async def sending(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, sending)
        except _TooLarge:
            if not started:
                await _too_large(self.limit)(scope, receive, send)


def _too_large(limit: int) -> Response:
    err = _TooLarge(limit)
    return JSONResponse(body(err), status_code=413)


def create_app(
    service: Service, settings: Settings | None = None, *, owns_service: bool = False
) -> FastAPI:
    """The app answering with ``service`` (see the module docstring); with ``owns_service`` the
    service's upload folder is removed when the app shuts down."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_service:
                service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="FusionDx",
        summary=f"Run '{service.cfg.name}' served with ONNX Runtime",
        docs_url=None,  # the Swagger page loads its scripts from a CDN
        redoc_url=None,
    )
    fields = service.schema.field_of_column()
    card = model_card(service.run.path)

    @app.exception_handler(FusionDxError)
    async def _fusiondx_error(request: Request, err: FusionDxError) -> JSONResponse:
        status = err.status if isinstance(err, RequestError) else 422
        return JSONResponse(body(err, fields, service.root), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = (err.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(
            {"error": str(first.get("msg", "invalid request")), "field": where, "fix": None},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        fix = "see GET /model and the API in docs/deployment.md" if err.status_code < 500 else None
        return JSONResponse(
            {"error": str(err.detail), "field": None, "fix": fix},
            status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception) -> JSONResponse:
        log.error("request %s %s failed: %r", request.method, request.url.path, err, exc_info=err)
        return JSONResponse(
            {
                "error": "The server failed on this request.",
                "field": None,
                "fix": "see the server log",
            },
            status_code=500,
        )

    def _authorise(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.token.encode()
        ):
            raise RequestError(
                "This server needs a bearer token"
                + (", and the one given is wrong." if given else "."),
                field="Authorization",
                fix="send the header 'Authorization: Bearer <token>' with the server's --token",
                status=401,
            )

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "run": service.cfg.name,
            "backend": "onnxruntime",
            "token_required": settings.token is not None,
        }

    @app.get("/model")
    def model() -> dict[str, Any]:
        return card

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in kinds:  # a fixed list: no path from the request reaches the disk
            raise StarletteHTTPException(404, f"No file '{name}' here.")
        return Response(_static(name), media_type=kinds[name])

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        _authorise(request)
        explain = _flag(request.query_params.get("explain"))
        case = await _form_case(request, service)
        if explain:  # Grad-CAM runs for hundreds of ms: off the loop, which keeps reading
            answers = await run_in_threadpool(service.predict, [case], explain=True)
        else:
            # A plain answer is ~4 ms of Python and ONNX Runtime under the GIL: handing it to a
            # thread and back costs more than it frees (measured with bench serve: 420 requests
            # a second at 8 clients inline against 374 through the thread pool).
            answers = service.predict([case])
        return answers[0]

    @app.post("/predict/batch")
    async def predict_batch(request: Request) -> dict[str, Any]:
        _authorise(request)
        explain = _flag(request.query_params.get("explain"))
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RequestError(
                f"The body is not JSON ({e}).",
                field="body",
                fix='send {"cases": [{"cxr": "<base64>", "report": "...", "labs": {...}}, ...]}',
            ) from None
        cases_json = payload.get("cases") if isinstance(payload, dict) else None
        if not isinstance(cases_json, list) or not cases_json:
            raise RequestError(
                "The body has no list 'cases'.",
                field="cases",
                fix='send {"cases": [{...}, {...}]}, one object per case',
            )
        if len(cases_json) > MAX_BATCH:
            raise RequestError(
                f"The batch holds {len(cases_json)} cases; the limit is {MAX_BATCH}.",
                field="cases",
                fix=f"split it into batches of at most {MAX_BATCH}",
                status=413,
            )
        cases = [from_json(service.schema, c, f"cases[{i}].") for i, c in enumerate(cases_json)]
        answers = await run_in_threadpool(service.predict, cases, explain=explain)
        return {"cases": answers}

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_bytes)
    app.state.service = service
    return app


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


async def _form_case(request: Request, service: Service) -> CaseInput:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise RequestError(
            f"POST /predict takes a multipart form, not '{ctype or 'no content type'}'.",
            field="Content-Type",
            fix="send multipart/form-data: one file per image/signal modality, text and lab "
            "fields (POST /predict/batch takes JSON)",
            status=415,
        )
    items: list[tuple[str, Any]] = []
    async with request.form(max_files=64, max_fields=512) as form:
        for name, value in form.multi_items():
            if isinstance(value, str):
                items.append((name, value))
            else:
                items.append((name, (value.filename or "", await value.read())))
    return from_form(service.schema, items)


def _static(name: str) -> str:
    return (resources.files("fusiondx.serving") / "static" / name).read_text(encoding="utf-8")


def page_path() -> Path:
    """Where the page's files are (for the docs)."""
    return Path(str(resources.files("fusiondx.serving") / "static"))
