"""The app: the routers of :mod:`.routes` over one :class:`~.store.Store`, the request size limit, the
client's protocol check, the uniform error body, the reaper's life, and OpenAPI with the server's own
limits. The contract's types live in ``evalhub.protocol`` (both sides import them)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evalhub.protocol import EVENT_TYPES, INT64_MAX, INT64_MIN, TEXT_LIMIT
from evalhub.protocol.responses import PROTOCOL_VERSION

from ._version import __version__
from .db import Database
from .deps import JSON, error_body
from .errors import ApiError
from .migrate import upgrade
from .reaper import Reaper
from .routes import ROUTERS
from .settings import ServerSettings
from .store import Store

log = logging.getLogger("evalhub_server")


# ---- request size and the client's protocol ---------------------------------------------------


class SizeLimit:
    """413 for a body over the limit: by Content-Length up front, else counted as it streams in.

    It also sets the per-field text limit that the request's validation applies (``TEXT_LIMIT``),
    and refuses a client that speaks a newer protocol than this server (``X-Evalhub-Protocol``)."""

    def __init__(self, app: ASGIApp, limit: int, text_limit: int, artifact_limit: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.text_limit = text_limit
        self.artifact_limit = artifact_limit or limit

    def _refuse(self, limit: int, flag: str) -> JSON:
        return error_body(
            413, "too_large", f"request body is over the server's limit of {limit} bytes ({flag})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        TEXT_LIMIT.set(self.text_limit)
        limit, flag = self.limit, "--max-request-bytes"
        if scope.get("method") == "PUT" and _ARTIFACT.match(scope.get("path", "")):
            limit, flag = self.artifact_limit, "--max-artifact-bytes"  # a file, streamed to disk
        for name, value in scope.get("headers", ()):
            if name == b"x-evalhub-protocol":
                problem = _protocol_problem(value)
                if problem:
                    await error_body(400, "incompatible", problem, "header.x-evalhub-protocol")(
                        scope, receive, send
                    )
                    return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(limit, flag)(scope, receive, send)
                    return
                await self.app(scope, receive, send)  # the server holds the body to its Content-Length
                return
        if flag == "--max-artifact-bytes":  # chunked upload of a file: counted as it streams
            await self.app(scope, _counting(receive, limit, self._refuse(limit, flag), scope, send), send)
            return
        # No Content-Length (chunked): buffer up to the limit, then replay it to the app.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # disconnected: let the app see it
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                await self._refuse(limit, flag)(scope, receive, send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of a server with the default settings (what docs/openapi.json holds)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(ServerSettings(db_url=f"sqlite:///{folder}/openapi.db", artifacts_dir=folder))
        try:
            return app.openapi()
        finally:
            app.state.store.db.dispose()


_ARTIFACT = re.compile(r"^/api/runs/[0-9]+/artifacts/[^/]+$")


class _TooLarge(Exception):
    pass


def _counting(receive: Receive, limit: int, refusal: JSON, scope: Scope, send: Send) -> Receive:
    """``receive`` that stops a streamed body past ``limit`` (the route's upload is then discarded)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge(
                    f"request body is over the server's limit of {limit} bytes (--max-artifact-bytes)"
                )
        return message

    return counted


def _protocol_problem(value: bytes) -> str | None:
    try:
        spoken = int(value.split(b";")[0])
    except ValueError:
        return f"X-Evalhub-Protocol must be an integer, got {value[:32]!r}"
    if spoken > PROTOCOL_VERSION:
        return (
            f"this server is evalhub {__version__} and speaks protocol {PROTOCOL_VERSION}; the client "
            f"speaks protocol {spoken}: upgrade the server (pip install -U 'evalhub[server]')"
        )
    return None


def create_app(settings: ServerSettings, *, migrate: bool = True) -> FastAPI:
    """The FastAPI app over a fresh Store; upgrades the schema first unless ``migrate=False``.

    Any ASGI server may serve it (``evalhub server --workers N`` runs several processes over one
    database: the run state machine and the reaper are safe across processes)."""
    db = Database(settings.db_url)
    schema_rev = upgrade(db.engine) if migrate else None
    assert settings.artifacts_dir is not None
    store = Store(db, settings.artifacts_dir, lease_s=settings.lease_s, staging_dir=settings.staging_dir)
    text_limit = _text_limit(db, settings.max_text_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        reaper = Reaper(store.runs, settings.lease_s).start()
        try:
            yield
        finally:
            reaper.stop()

    app = FastAPI(
        title="evalhub tracking server",
        version=__version__,
        summary=f"The HTTP contract of evalhub, protocol {PROTOCOL_VERSION} (prose: docs/rest-api.md).",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        default_response_class=JSON,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.text_limit = text_limit
    app.state.schema_rev = schema_rev
    app.add_middleware(
        SizeLimit,
        limit=settings.max_request_bytes,
        text_limit=text_limit,
        artifact_limit=settings.max_artifact_bytes,
    )
    _errors(app)
    for router in ROUTERS:
        app.include_router(router)
    _openapi_limits(app, text_limit)
    return app


def _text_limit(db: Database, configured: int) -> int:
    """The per-field text limit: the configured one, lowered on MySQL/MariaDB so that a row of several
    such fields always fits in one packet (``max_allowed_packet``)."""
    if db.backend != "mysql":
        return configured
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        packet = int(conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one())
    limit = min(configured, packet // 8)
    if limit < configured:
        log.warning(
            "evalhub: text fields limited to %d bytes (max_allowed_packet is %d); raise it to allow more",
            limit,
            packet,
        )
    return limit


def _openapi_limits(app: FastAPI, text_limit: int) -> None:
    """Show the server's own per-field text limit in OpenAPI (the models carry a static ceiling)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                # FastAPI's OpenAPI model keeps bounds as floats: give the 64-bit ones back exactly
                for bound, exact in (("maximum", INT64_MAX), ("minimum", INT64_MIN)):
                    if isinstance(node.get(bound), float) and abs(node[bound]) >= 2.0**63:
                        node[bound] = exact
                if node.pop("x-evalhub-limit", None) == "max_text_bytes":
                    if node.get("type") == "string" or "maxLength" in node:
                        node["maxLength"] = text_limit
                    node["description"] = (
                        node.get("description", "") + " "
                    ).lstrip() + f"At most {text_limit} bytes (UTF-8; as JSON for an object)."
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return error_body(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ())]
        # Drop pydantic's union tags (e.g. "series" in body.events.0.series.points) from the field name.
        for i in range(2, len(loc)):
            if loc[i - 2] == "events" and loc[i - 1].isdigit() and loc[i] in EVENT_TYPES:
                del loc[i]
                break
        field = ".".join(loc) or None
        msg = str(first.get("msg", "invalid"))
        if first.get("type") == "json_invalid":
            msg = f"the body is not valid JSON: {first.get('ctx', {}).get('error', msg)}"
        message = f"{field}: {msg}" if field else msg
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_body(422, "invalid", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {401: "unauthorized", 404: "not_found", 409: "conflict", 413: "too_large"}.get(
            exc.status_code, "invalid"
        )
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_body(exc.status_code, code if exc.status_code < 500 else "internal", message)

    @app.exception_handler(_TooLarge)
    async def too_large(_request: Request, exc: _TooLarge) -> Response:
        return error_body(413, "too_large", str(exc))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return error_body(500, "internal", f"internal server error: {type(exc).__name__}")


__all__ = ["create_app", "openapi_document"]
