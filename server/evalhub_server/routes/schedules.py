"""Schedules: evaluations that run by themselves (an experiment spec and when), kept by the server
and run by the keeper on the cluster, which claims each due tick and reports its experiment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from evalhub.protocol import INT64_MAX
from evalhub.protocol import schedules as s

from ..deps import COMMON_ERRORS, JSON, CallerDep, StoreDep, errors

router = APIRouter(prefix="/api/schedules", tags=["schedules"], responses=COMMON_ERRORS)

ScheduleId = Annotated[int, Path(ge=1, le=INT64_MAX, description="a schedule id")]


@router.post("", status_code=201, response_model=s.Schedule, responses=errors(409))
def create_schedule(body: s.ScheduleCreate, c: CallerDep, store: StoreDep) -> Any:
    """Keep a schedule (409 when the project has one of that name)."""
    return JSON(store.schedules.create(c.project_id, body.model_dump()), status_code=201)


@router.get("", response_model=s.Schedules)
def list_schedules(c: CallerDep, store: StoreDep) -> Any:
    """The project's schedules, oldest first."""
    return JSON(store.schedules.list_schedules(c.project_id))


@router.get("/{schedule_id}", response_model=s.Schedule, responses=errors(404))
def get_schedule(schedule_id: ScheduleId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.schedules.get(c.project_id, schedule_id))


@router.delete("/{schedule_id}", response_model=s.Schedule, responses=errors(404))
def delete_schedule(schedule_id: ScheduleId, c: CallerDep, store: StoreDep) -> Any:
    """Stop and forget a schedule (the experiments it made stay); answers the schedule as it was."""
    return JSON(store.schedules.delete(c.project_id, schedule_id))


@router.post("/{schedule_id}/claim", response_model=s.Schedule, responses=errors(404, 409))
def claim_tick(schedule_id: ScheduleId, body: s.ScheduleClaim, c: CallerDep, store: StoreDep) -> Any:
    """Take the due tick ``tick`` (it must be the schedule's ``next_at``, with no tick pending) and set
    the next one; 409 when another keeper has it or it is not due."""
    return JSON(store.schedules.claim(c.project_id, schedule_id, body.tick, body.next_at))


@router.post("/{schedule_id}/done", response_model=s.Schedule, responses=errors(404, 409))
def tick_done(schedule_id: ScheduleId, body: s.ScheduleDone, c: CallerDep, store: StoreDep) -> Any:
    """Report the experiment of the pending tick: the tick is run."""
    return JSON(store.schedules.done(c.project_id, schedule_id, body.tick, body.experiment_id))
