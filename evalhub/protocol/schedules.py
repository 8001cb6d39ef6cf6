"""Evaluations that run by themselves: a schedule (``/api/schedules``) is an experiment spec and when
to run it, every so many seconds, by a cron expression, or on every new checkpoint of a model (a
trigger), kept by the server.

The server keeps the schedule's next tick (``next_at``, unix seconds); whoever runs schedules (the
keeper on the cluster, :mod:`evalhub.execution.schedules`) claims a due tick by naming it and the tick
after it (``POST /api/schedules/{id}/claim``): a compare-and-set, so two keepers never both win one
tick. The tick after is the first one later than now, so ticks missed while nothing ran them become
one run on recovery. A claimed tick stays ``pending`` until its experiment is reported
(``POST /api/schedules/{id}/done``); a keeper that died in between submits the pending tick again,
under the same client key, which answers the experiment already made: a tick runs once, never twice.

A trigger (``on_checkpoint``: a model's name) counts in checkpoint ids instead of seconds: its
``next_at`` is the id of the last checkpoint it took, and a claim names that id and the new
checkpoint's (``next_at``), whose runs then join the trigger's one growing experiment.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from ._fields import Id, JsonObject, Name
from .requests import Body
from .responses import Model

ScheduleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Tick = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False, description="unix seconds")]


class ScheduleCreate(Body):
    """``POST /api/schedules``: run ``spec`` (an experiment spec as a JSON object) every ``every_s``
    seconds or at the times of ``cron`` (five fields, UTC); the first tick is ``next_at``."""

    name: ScheduleName
    spec: JsonObject
    every_s: Annotated[float, Field(ge=1, le=366 * 86400, allow_inf_nan=False)] | None = None
    cron: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    on_checkpoint: Name | None = None
    next_at: Tick

    @model_validator(mode="after")
    def _one_period(self) -> ScheduleCreate:
        if [self.every_s, self.cron, self.on_checkpoint].count(None) != 2:
            raise ValueError("give exactly one of every_s, cron and on_checkpoint")
        return self


class ScheduleClaim(Body):
    """Claim the due tick ``tick`` (the schedule's ``next_at``); the schedule's next tick becomes
    ``next_at`` (later than now)."""

    tick: Tick
    next_at: Tick


class ScheduleDone(Body):
    """The experiment that the pending tick ``tick`` made."""

    tick: Tick
    experiment_id: Id


class Schedule(Model):
    id: int
    project: str
    name: str
    spec: dict[str, Any]
    every_s: float | None = None
    cron: str | None = None
    on_checkpoint: str | None = Field(
        None, description="a trigger: the model whose new checkpoints it runs on"
    )
    next_at: float
    pending_tick: float | None = Field(
        None, description="a claimed tick whose experiment is not reported yet"
    )
    last_tick: float | None = None
    last_experiment_id: int | None = None
    ticks_run: int = 0
    created_at: str


class Schedules(Model):
    items: list[Schedule]
    total: int


__all__ = ["Schedule", "ScheduleClaim", "ScheduleCreate", "ScheduleDone", "ScheduleName", "Schedules"]
