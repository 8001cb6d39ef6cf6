# ruff: noqa: B008  (FastAPI declares dependencies as defaults)
"""What every route depends on: the caller (project and rights, from the token), the store, the
JSON answer class, the parameter types with their limits, and the error answers OpenAPI lists."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from evalhub.protocol import INT64_MAX, INT64_MIN
from evalhub.protocol.responses import Error

from .access import same_secret
from .errors import Invalid, Unauthorized
from .settings import ServerSettings
from .store import Store

_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def dumps(content: Any) -> bytes:
    try:
        import orjson

        return orjson.dumps(content)
    except (ImportError, TypeError):
        return json.dumps(content, separators=(",", ":")).encode()


class JSON(JSONResponse):
    """A JSON answer, encoded with orjson (the routes' bodies are plain dicts the store builds). A
    JSONResponse, so OpenAPI shows each route's declared model as its body."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_body(status: int, code: str, message: str, field: str | None = None) -> JSON:
    return JSON({"error": {"code": code, "message": message, "field": field}}, status_code=status)


# The error answers every route may give (OpenAPI lists them with the uniform body).
def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "the body is not what the route reads (an OTLP route: not OTLP protobuf or JSON)",
        401: "no token, or one that is not valid (revoked, expired) on this server",
        403: "the token may not do this: a label given on another person's token, or by no person",
        404: "no such object in the caller's project (another project's objects answer 404 too)",
        409: "a duplicate name, an illegal status change, a stale attempt, or a delete with referrers",
        413: "the request body is over the server's --max-request-bytes",
        415: "a Content-Type or Content-Encoding the route does not read",
        422: "the input is invalid: the field is named (types, 64-bit integers, Unicode, text limits)",
    }
    return {s: {"model": Error, "description": words[s]} for s in statuses}


COMMON_ERRORS = errors(401, 413, 422)


# ---- parameters, with the limits the store can hold -------------------------------------------

RunId = Annotated[int, Path(ge=1, le=INT64_MAX, description="a run id")]
ExpId = Annotated[int, Path(ge=1, le=INT64_MAX, description="an experiment id")]
Ref = Annotated[str, Path(min_length=1, max_length=255, description="an id, or a name in the project")]
NamePath = Annotated[str, Path(min_length=1, max_length=255)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size, at most 1000")]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
Filter = Annotated[str | None, Query(max_length=255)]
Step = Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)]
MaxPoints = Annotated[int, Query(ge=1, le=100_000, description="point budget of a downsampled read")]
Archived = Annotated[bool, Query(description="list the archived (deleted, not purged) objects instead")]
Cascade = Annotated[bool, Query(description="also delete what refers to the object")]
Purge = Annotated[bool, Query(description="remove the rows for good instead of archiving them")]


# ---- the caller ---------------------------------------------------------------------------------


@dataclass
class Caller:
    project_id: int
    project: str
    admin: bool
    person: str | None = None  # a person's token: who gives the labels it sends


def store_of(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def settings_of(request: Request) -> ServerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def caller(
    request: Request,
    authorization: Annotated[str | None, Header(max_length=4096)] = None,
    x_evalhub_project: Annotated[str | None, Header(max_length=255)] = None,
) -> Caller:
    """The project a request acts in: the token's (with auth), else the ``X-Evalhub-Project`` header."""
    store, settings = store_of(request), settings_of(request)
    name = x_evalhub_project or "default"
    if not _PROJECT.match(name):
        raise Invalid(f"project name '{name}' is not valid", field="header.x-evalhub-project")
    if not settings.auth_enabled:
        return Caller(store.access.project_id(name, create=True), name, admin=True)
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("this server needs a token: send 'Authorization: Bearer <token>'")
    token = authorization[7:].strip()
    if same_secret(token, settings.admin_token):
        return Caller(store.access.project_id(name, create=True), name, admin=True)
    pid, project, person = store.access.token_identity(token)
    return Caller(pid, project, admin=False, person=person)


def admin(c: Caller = Depends(caller)) -> Caller:
    if not c.admin:
        raise Unauthorized("only the admin token may manage projects and tokens")
    return c


CallerDep = Annotated[Caller, Depends(caller)]
AdminDep = Annotated[Caller, Depends(admin)]
StoreDep = Annotated[Store, Depends(store_of)]

__all__ = [
    "COMMON_ERRORS",
    "JSON",
    "AdminDep",
    "Caller",
    "CallerDep",
    "StoreDep",
    "dumps",
    "error_body",
    "errors",
]
