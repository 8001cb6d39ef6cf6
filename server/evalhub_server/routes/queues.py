"""People as scorers: people's tokens (the admin issues them), annotation queues over an experiment's
samples, their items as a person sees them, each person's labels, and a queue's progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from evalhub.protocol import INT64_MAX
from evalhub.protocol import annotation as a
from evalhub.protocol import responses as r

from ..deps import COMMON_ERRORS, JSON, AdminDep, Caller, CallerDep, Limit, NamePath, Offset, StoreDep, errors
from ..errors import Forbidden, Invalid

router = APIRouter(tags=["annotation"], responses=COMMON_ERRORS)

QueueId = Annotated[int, Path(ge=1, le=INT64_MAX, description="an annotation queue id")]
ItemId = Annotated[int, Path(ge=1, le=INT64_MAX, description="an item of the queue")]
PersonQuery = Annotated[
    str | None, Query(max_length=64, description="whose labels (a person's token says it by itself)")
]


def person_of(c: Caller, named: str | None) -> str:
    """Who labels: a person's token is that person (naming anyone else is refused); a project token is
    no one's; the admin (or a server without auth) names the person."""
    if c.person is not None:
        if named is not None and named != c.person:
            raise Forbidden(
                f"this token is {c.person}'s: {named} cannot label with it; "
                f"ask the admin for a token of {named}'s own",
                field="body.person",
            )
        return c.person
    if not c.admin:
        raise Forbidden(
            f"labels are given by people, and this token of project '{c.project}' is no person's: "
            f"ask the admin for one (POST /api/projects/{c.project}/people)"
        )
    if named is None:
        raise Invalid("name the person who labels (person=...)", field="body.person")
    return named


@router.post(
    "/api/projects/{name}/people", status_code=201, response_model=a.PersonToken, responses=errors(404, 409)
)
def create_person(name: NamePath, body: a.PersonCreate, c: AdminDep, store: StoreDep) -> Any:
    """Issue a token to a person of the project: every label given with it is that person's."""
    made = store.access.create_token(name, body.name, body.expires_in_days, person=body.name)
    return JSON(made, status_code=201)


@router.post("/api/annotation-queues", status_code=201, response_model=a.Queue, responses=errors(404, 409))
def create_queue(body: a.QueueCreate, c: CallerDep, store: StoreDep) -> Any:
    """A queue over an experiment's samples of one task (all, a filter, a seeded random sample); 422
    naming the filter when it selects nothing."""
    created = store.annotation.create(c.project_id, body.model_dump(by_alias=True), created_by=c.person)
    return JSON(created, status_code=201)


@router.get("/api/annotation-queues", response_model=r.Page[a.Queue])
def list_queues(
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    experiment_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> Any:
    return JSON(store.annotation.list_queues(c.project_id, limit, offset, experiment_id=experiment_id))


@router.get("/api/annotation-queues/{queue_id}", response_model=a.Queue, responses=errors(404))
def get_queue(queue_id: QueueId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.annotation.get(c.project_id, queue_id))


@router.get(
    "/api/annotation-queues/{queue_id}/progress", response_model=a.QueueProgress, responses=errors(404)
)
def queue_progress(queue_id: QueueId, c: CallerDep, store: StoreDep) -> Any:
    """Items with a label, labels given, and each person's count of the queue's items."""
    return JSON(store.annotation.progress(c.project_id, queue_id))


@router.get(
    "/api/annotation-queues/{queue_id}/items", response_model=r.Page[a.QueueItem], responses=errors(403, 404)
)
def queue_items(
    queue_id: QueueId, c: CallerDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0,
    person: PersonQuery = None,
) -> Any:  # fmt: skip
    """The items in order with their prompt and answers as the person sees them (a pair in the order
    drawn for that person) and the person's label."""
    store.annotation.check(c.project_id, queue_id)
    who = person_of(c, person) if c.person else person  # a read: any token may look as a person sees
    return JSON(store.annotation.items(c.project_id, queue_id, who, limit, offset))


@router.get("/api/annotation-queues/{queue_id}/labels", response_model=r.Page[a.Label], responses=errors(404))
def queue_labels(
    queue_id: QueueId, c: CallerDep, store: StoreDep, limit: Limit = 1000, offset: Offset = 0,
    person: PersonQuery = None,
) -> Any:  # fmt: skip
    """Every person's labels (what agreement is computed from), or one person's."""
    return JSON(store.annotation.labels(c.project_id, queue_id, limit, offset, person=person))


@router.put(
    "/api/annotation-queues/{queue_id}/items/{item_id}/label",
    response_model=a.Label,
    responses=errors(403, 404),
)
def put_label(queue_id: QueueId, item_id: ItemId, body: a.LabelSubmit, c: CallerDep, store: StoreDep) -> Any:
    """The caller's label of the item (a later one replaces it), also written as the run's per-sample
    score ``<queue>.<person>``. 403 when the token is another person's, or no person's."""
    store.annotation.check(c.project_id, queue_id)
    who = person_of(c, body.person)
    return JSON(store.annotation.label(c.project_id, queue_id, item_id, who, body.model_dump()))


@router.delete(
    "/api/annotation-queues/{queue_id}/items/{item_id}/label",
    response_model=a.Label,
    responses=errors(403, 404),
)
def delete_label(
    queue_id: QueueId, item_id: ItemId, c: CallerDep, store: StoreDep, person: PersonQuery = None
) -> Any:
    """Undo: the caller's label of the item and its score are removed (the removed label answers)."""
    store.annotation.check(c.project_id, queue_id)
    who = person_of(c, person)
    return JSON(store.annotation.unlabel(c.project_id, queue_id, item_id, who))
