"""``POST /api/runs/{id}/events``: the one write path of workers and training runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from evalhub.protocol import EventAnswer, EventBatch

from ..deps import COMMON_ERRORS, JSON, CallerDep, RunId, StoreDep, errors

router = APIRouter(prefix="/api/runs", tags=["events"], responses=COMMON_ERRORS)


@router.post("/{run_id}/events", response_model=EventAnswer, responses=errors(404, 409))
def post_events(run_id: RunId, body: EventBatch, c: CallerDep, store: StoreDep) -> Any:
    """Apply the batch's events above the stream's highest applied ``seq`` in one transaction; a
    batch of a stale attempt is refused whole (409 ``stale_attempt``); an empty batch is a heartbeat."""
    return JSON(store.ingest(c.project_id, run_id, body.stream, body.events, attempt=body.attempt))
