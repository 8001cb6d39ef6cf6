"""The registry's six kinds, one router each, made by one factory: create, list, get, PATCH
(description, tags, metadata), DELETE (archive; ``purge``; ``cascade``), restore."""

# mypy: disable-error-code="valid-type,call-overload,attr-defined,unused-ignore"
# (the endpoints' types are classes this factory picks or makes per kind: runtime values to mypy)
# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations, which
# name the classes this module's factory makes per kind (they must be objects, not strings).
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, create_model

from evalhub import protocol as p
from evalhub.protocol import responses as r

from ..deps import (
    COMMON_ERRORS,
    JSON,
    Archived,
    CallerDep,
    Cascade,
    Filter,
    Limit,
    Offset,
    Purge,
    Ref,
    StoreDep,
    errors,
)

# kind -> (create body, answer, list filters)
KINDS: dict[str, tuple[type[BaseModel], type[BaseModel], tuple[str, ...]]] = {
    "families": (p.FamilyCreate, r.Family, ("name", "modality")),
    "models": (p.ModelCreate, r.ModelImpl, ("name", "family", "runtime")),
    "checkpoints": (p.CheckpointCreate, r.Checkpoint, ("name", "model")),
    "datasets": (p.DatasetCreate, r.Dataset, ("name",)),
    "tasks": (p.TaskCreate, r.Task, ("name", "type")),
    "benchmarks": (p.BenchmarkCreate, r.Benchmark, ("name",)),
}


def _router(
    kind: str, create_body: type[BaseModel], answer: type[BaseModel], filters: tuple[str, ...]
) -> APIRouter:
    router = APIRouter(prefix=f"/api/{kind}", tags=[kind], responses=COMMON_ERRORS)
    Filters = create_model(f"{answer.__name__}Filters", **{name: (Filter, None) for name in filters})

    def create(body: create_body, c: CallerDep, store: StoreDep) -> Any:
        return JSON(
            store.registry.create(kind, c.project_id, body.model_dump(by_alias=True)), status_code=201
        )

    def list_(
        c: CallerDep,
        store: StoreDep,
        where: Annotated[Filters, Query()],
        limit: Limit = 100,
        offset: Offset = 0,
        archived: Archived = False,
    ) -> Any:
        return JSON(
            store.registry.list_of(kind, c.project_id, limit, offset, archived=archived, **where.model_dump())
        )

    def get(ref: Ref, c: CallerDep, store: StoreDep) -> Any:
        return JSON(store.registry.get(kind, c.project_id, ref))

    def patch(ref: Ref, body: p.Patch, c: CallerDep, store: StoreDep) -> Any:
        return JSON(store.registry.patch(kind, c.project_id, ref, body.model_dump()))

    def delete(
        ref: Ref, c: CallerDep, store: StoreDep, cascade: Cascade = False, purge: Purge = False
    ) -> Any:
        return JSON(
            store.registry.delete(kind, c.project_id, ref, cascade=cascade, purge=purge, runs=store.runs)
        )

    def restore(ref: Ref, c: CallerDep, store: StoreDep) -> Any:
        return JSON(store.registry.restore(kind, c.project_id, ref, runs=store.runs))

    singular = answer.__name__.lower()
    router.add_api_route("", create, methods=["POST"], status_code=201, response_model=answer,
                         responses=errors(404, 409), name=f"create_{singular}")  # fmt: skip
    router.add_api_route("", list_, methods=["GET"], response_model=r.Page[answer], name=f"list_{kind}")
    router.add_api_route("/{ref}", get, methods=["GET"], response_model=answer, responses=errors(404),
                         name=f"get_{singular}")  # fmt: skip
    router.add_api_route("/{ref}", patch, methods=["PATCH"], response_model=answer, responses=errors(404),
                         name=f"patch_{singular}")  # fmt: skip
    router.add_api_route("/{ref}", delete, methods=["DELETE"], response_model=r.Deleted,
                         responses=errors(404, 409), name=f"delete_{singular}")  # fmt: skip
    router.add_api_route("/{ref}/restore", restore, methods=["POST"], response_model=answer,
                         responses=errors(404), name=f"restore_{singular}")  # fmt: skip
    return router


routers = [_router(kind, *spec) for kind, spec in KINDS.items()]
