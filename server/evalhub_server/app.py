# ruff: noqa: B008  (FastAPI declares dependencies and query parameters as defaults)
"""The HTTP layer: routes of docs/rest-api.md translated to Store calls, auth, errors, size limit."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, schemas
from .db import Database
from .errors import ApiError, Invalid, Unauthorized
from .migrate import upgrade
from .settings import ServerSettings
from .store import Store, check_limit

log = logging.getLogger("evalhub_server")
_EVENT_TYPES = {"status", "progress", "series", "metrics", "samples", "log", "artifact"}
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def dumps(content: Any) -> bytes:
    try:
        import orjson

        return orjson.dumps(content)
    except (ImportError, TypeError):
        return json.dumps(content, separators=(",", ":")).encode()


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_body(status: int, code: str, message: str, field: str | None = None) -> JSON:
    return JSON({"error": {"code": code, "message": message, "field": field}}, status_code=status)


# ---- request size ----------------------------------------------------------------------------


class SizeLimit:
    """413 for a body over the limit: by Content-Length up front, else counted as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _refuse(self) -> JSON:
        return error_body(
            413,
            "too_large",
            f"request body is over the server's limit of {self.limit} bytes (--max-request-bytes)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse()(scope, receive, send)
                    return
                await self.app(scope, receive, send)  # the server holds the body to its Content-Length
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
            if seen > self.limit:
                await self._refuse()(scope, receive, send)
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


# ---- auth -------------------------------------------------------------------------------------


@dataclass
class Caller:
    project_id: int
    project: str
    admin: bool


def create_app(settings: ServerSettings, *, migrate: bool = True) -> FastAPI:
    """The FastAPI app over a fresh Store; upgrades the schema first unless ``migrate=False``."""
    db = Database(settings.db_url)
    schema_rev = upgrade(db.engine) if migrate else None
    assert settings.artifacts_dir is not None
    store = Store(db, settings.artifacts_dir)
    app = FastAPI(
        title="evalhub tracking server",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        default_response_class=JSON,
    )
    app.state.store = store
    app.state.settings = settings
    app.add_middleware(SizeLimit, limit=settings.max_request_bytes)
    _errors(app)

    def caller(
        authorization: str | None = Header(default=None),
        x_evalhub_project: str | None = Header(default=None),
    ) -> Caller:
        name = x_evalhub_project or "default"
        if not _PROJECT.match(name):
            raise Invalid(f"project name '{name}' is not valid", field="header.x-evalhub-project")
        if not settings.auth_enabled:
            return Caller(store.registry.project_id(name, create=True), name, admin=True)
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("this server needs a token: send 'Authorization: Bearer <token>'")
        token = authorization[7:].strip()
        if token == settings.admin_token:
            return Caller(store.registry.project_id(name, create=True), name, admin=True)
        hit = store.registry.token_project(token)
        if hit is None:
            raise Unauthorized("the token is not valid on this server")
        return Caller(hit[0], hit[1], admin=False)

    def admin(c: Caller = Depends(caller)) -> Caller:
        if not c.admin:
            raise Unauthorized("only the admin token may manage projects and tokens")
        return c

    Limit = Query(100, description="page size, at most 1000")
    Offset = Query(0)

    def paged(limit: int, offset: int) -> None:
        check_limit(limit, offset)

    reg = store.registry

    @app.get("/api/health")
    def health() -> Any:
        return JSON(
            {
                "status": "ok",
                "version": __version__,
                "db": db.backend,
                "auth": settings.auth_enabled,
                "schema": schema_rev,
            }
        )

    # projects and tokens

    @app.post("/api/projects", status_code=201)
    def create_project(body: schemas.ProjectCreate, c: Caller = Depends(admin)) -> Any:
        return JSON(reg.create_project(body.name), status_code=201)

    @app.get("/api/projects")
    def list_projects(limit: int = Limit, offset: int = Offset, c: Caller = Depends(admin)) -> Any:
        paged(limit, offset)
        return JSON(reg.list_projects(limit, offset))

    @app.post("/api/projects/{name}/tokens", status_code=201)
    def create_token(name: str, body: schemas.TokenCreate, c: Caller = Depends(admin)) -> Any:
        return JSON(reg.create_token(name, body.name), status_code=201)

    # registry

    def body_dict(body: Any) -> dict[str, Any]:
        return dict(body.model_dump(by_alias=True))

    @app.post("/api/families", status_code=201)
    def create_family(body: schemas.FamilyCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_family(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/families")
    def list_families(
        limit: int = Limit, offset: int = Offset, modality: str | None = None, c: Caller = Depends(caller)
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_families(c.project_id, limit, offset, modality=modality))

    @app.get("/api/families/{ref}")
    def get_family(ref: str, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_family(c.project_id, ref))

    @app.post("/api/models", status_code=201)
    def create_model(body: schemas.ModelCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_model(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/models")
    def list_models(
        limit: int = Limit,
        offset: int = Offset,
        family: str | None = None,
        runtime: str | None = None,
        name: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_models(c.project_id, limit, offset, family=family, runtime=runtime, name=name))

    @app.get("/api/models/{ref}")
    def get_model(ref: str, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_model(c.project_id, ref))

    @app.post("/api/checkpoints", status_code=201)
    def create_checkpoint(body: schemas.CheckpointCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_checkpoint(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/checkpoints")
    def list_checkpoints(
        limit: int = Limit,
        offset: int = Offset,
        model: str | None = None,
        name: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_checkpoints(c.project_id, limit, offset, model=model, name=name))

    @app.get("/api/checkpoints/{ref}")
    def get_checkpoint(ref: int, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_checkpoint(c.project_id, ref))

    @app.post("/api/datasets", status_code=201)
    def create_dataset(body: schemas.DatasetCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_dataset(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/datasets")
    def list_datasets(
        limit: int = Limit, offset: int = Offset, name: str | None = None, c: Caller = Depends(caller)
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_datasets(c.project_id, limit, offset, name=name))

    @app.get("/api/datasets/{ref}")
    def get_dataset(ref: str, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_dataset(c.project_id, ref))

    @app.post("/api/tasks", status_code=201)
    def create_task(body: schemas.TaskCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_task(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/tasks")
    def list_tasks(
        limit: int = Limit,
        offset: int = Offset,
        type: str | None = None,
        name: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_tasks(c.project_id, limit, offset, type=type, name=name))

    @app.get("/api/tasks/{ref}")
    def get_task(ref: str, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_task(c.project_id, ref))

    @app.post("/api/benchmarks", status_code=201)
    def create_benchmark(body: schemas.BenchmarkCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.create_benchmark(c.project_id, body_dict(body)), status_code=201)

    @app.get("/api/benchmarks")
    def list_benchmarks(
        limit: int = Limit, offset: int = Offset, name: str | None = None, c: Caller = Depends(caller)
    ) -> Any:
        paged(limit, offset)
        return JSON(reg.list_benchmarks(c.project_id, limit, offset, name=name))

    @app.get("/api/benchmarks/{ref}")
    def get_benchmark(ref: str, c: Caller = Depends(caller)) -> Any:
        return JSON(reg.get_benchmark(c.project_id, ref))

    # experiments

    runs = store.runs
    reads = store.reads

    @app.post("/api/experiments", status_code=201)
    def create_experiment(body: schemas.ExperimentCreate, c: Caller = Depends(caller)) -> Any:
        exp, created = runs.create_experiment(c.project_id, body.model_dump())
        return JSON(exp, status_code=201 if created else 200)

    @app.get("/api/experiments")
    def list_experiments(
        limit: int = Limit,
        offset: int = Offset,
        status: str | None = None,
        name: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(runs.list_experiments(c.project_id, limit, offset, status=status, name=name))

    @app.get("/api/experiments/{exp_id}")
    def get_experiment(exp_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.get_experiment(c.project_id, exp_id))

    @app.post("/api/experiments/{exp_id}/cancel")
    def cancel_experiment(exp_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.cancel_experiment(c.project_id, exp_id))

    @app.get("/api/experiments/{exp_id}/runs")
    def experiment_runs(
        exp_id: int,
        limit: int = Limit,
        offset: int = Offset,
        status: str | None = None,
        task: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        runs.get_experiment(c.project_id, exp_id)
        return JSON(
            runs.list_runs(c.project_id, limit, offset, experiment_id=exp_id, status=status, task=task)
        )

    @app.get("/api/experiments/{exp_id}/compare")
    def compare(exp_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(reads.compare(c.project_id, exp_id))

    @app.get("/api/experiments/{exp_id}/samples")
    def experiment_samples(
        exp_id: int,
        task: str | None = None,
        filter: str = "all",
        q: str | None = None,
        limit: int = Query(50),
        offset: int = Offset,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(reads.aligned_samples(c.project_id, exp_id, task, filter, q, limit, offset))

    # runs

    @app.post("/api/runs", status_code=201)
    def create_run(body: schemas.RunCreate, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.create_run(c.project_id, body.model_dump()), status_code=201)

    @app.get("/api/runs")
    def list_runs(
        limit: int = Limit,
        offset: int = Offset,
        experiment_id: int | None = None,
        status: str | None = None,
        type: str | None = None,
        model: str | None = None,
        task: str | None = None,
        name: str | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        paged(limit, offset)
        return JSON(
            runs.list_runs(
                c.project_id,
                limit,
                offset,
                experiment_id=experiment_id,
                status=status,
                type=type,
                model=model,
                task=task,
                name=name,
            )
        )

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.get_run(c.project_id, run_id))

    @app.post("/api/runs/{run_id}/status")
    def set_status(run_id: int, body: schemas.StatusChange, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.set_status(c.project_id, run_id, body.status, error=body.error, worker=body.worker))

    @app.post("/api/runs/{run_id}/cancel")
    def cancel_run(run_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(runs.cancel_run(c.project_id, run_id))

    @app.post("/api/runs/{run_id}/events")
    def post_events(run_id: int, body: schemas.EventBatch, c: Caller = Depends(caller)) -> Any:
        return JSON(store.ingest(c.project_id, run_id, body.stream, body.events))

    @app.get("/api/runs/{run_id}/metrics")
    def run_metrics(run_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(reads.metrics(c.project_id, run_id))

    @app.get("/api/runs/{run_id}/series/keys")
    def series_keys(run_id: int, c: Caller = Depends(caller)) -> Any:
        return JSON(reads.series_keys(c.project_id, run_id))

    @app.get("/api/runs/{run_id}/series")
    def run_series(
        run_id: int,
        key: str,
        max_points: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
        c: Caller = Depends(caller),
    ) -> Any:
        return JSON(reads.series(c.project_id, run_id, key, max_points, min_step, max_step))

    @app.get("/api/series")
    def many_series(run_ids: str, key: str, max_points: int = 1000, c: Caller = Depends(caller)) -> Any:
        try:
            ids = [int(x) for x in run_ids.split(",") if x.strip()]
        except ValueError:
            raise Invalid(
                f"run_ids must be comma-separated integers, got '{run_ids}'", field="query.run_ids"
            ) from None
        return JSON(reads.many_series(c.project_id, ids, key, max_points))

    @app.get("/api/runs/{run_id}/samples")
    def run_samples(
        run_id: int, limit: int = Limit, offset: int = Offset, c: Caller = Depends(caller)
    ) -> Any:
        paged(limit, offset)
        return JSON(reads.samples(c.project_id, run_id, limit, offset))

    @app.get("/api/runs/{run_id}/logs")
    def run_logs(run_id: int, limit: int = Limit, offset: int = Offset, c: Caller = Depends(caller)) -> Any:
        paged(limit, offset)
        return JSON(reads.logs(c.project_id, run_id, limit, offset))

    @app.put("/api/runs/{run_id}/artifacts/{name}", status_code=201)
    async def put_artifact(run_id: int, name: str, request: Request, c: Caller = Depends(caller)) -> Any:
        data = await request.body()
        out = await run_in_threadpool(store.artifacts.put, c.project_id, run_id, name, data)
        return JSON(out, status_code=201)

    @app.get("/api/runs/{run_id}/artifacts")
    def list_artifacts(
        run_id: int, limit: int = Limit, offset: int = Offset, c: Caller = Depends(caller)
    ) -> Any:
        paged(limit, offset)
        return JSON(store.artifacts.list(c.project_id, run_id, limit, offset))

    @app.get("/api/runs/{run_id}/artifacts/{name}")
    def get_artifact(run_id: int, name: str, c: Caller = Depends(caller)) -> Any:
        return FileResponse(store.artifacts.path(c.project_id, run_id, name), filename=name)

    return app


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
            if loc[i - 2] == "events" and loc[i - 1].isdigit() and loc[i] in _EVENT_TYPES:
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

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return error_body(500, "internal", f"internal server error: {type(exc).__name__}")


__all__ = ["create_app"]
