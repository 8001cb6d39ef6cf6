"""The event batch: the one write path of workers and of ``run.log`` (``POST /runs/{id}/events``).

``seq`` is strictly increasing within a ``stream``; the server applies only events above the stream's
highest applied ``seq``, so a retried or re-split batch is stored once. ``attempt`` names the run
attempt the writer works for: events of an attempt that is not the run's current one are refused
(409), so a partitioned old worker cannot overwrite a retry. Every accepted batch (an empty one is a
heartbeat) renews the attempt's lease.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._fields import Count, Int64, JsonObject, Name, NonEmptyText, Text
from .requests import Body
from .status import RunStatus


class Point(Body):
    key: Name
    step: Int64
    value: float  # NaN and ±inf are values ("NaN", "Infinity", "-Infinity" on the wire)
    wall_time: Annotated[float, Field(allow_inf_nan=False)] | None = None


class Sample(Body):
    sample_key: Name
    index: Int64 | None = None
    task: Name | None = None  # the subtask of a group task (lm-eval's own name)
    prompt: Text | None = None
    reference: Text | None = None
    output: Text | None = None
    filtered_output: Text | None = None
    scores: dict[Name, float] = Field(default_factory=dict)
    primary_score: float | None = None
    latency_ms: float | None = None
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    extra: JsonObject | None = None


class LogLine(Body):
    level: Annotated[str, Field(max_length=16)] = "info"
    message: Text
    wall_time: Annotated[float, Field(allow_inf_nan=False)] | None = None


class _Event(Body):
    seq: Annotated[int, Field(ge=1, le=2**63 - 1)]


class StatusEvent(_Event):
    type: Literal["status"]
    status: RunStatus
    worker: JsonObject | None = None
    error: Text | None = None
    work_key: Annotated[str, Field(max_length=64, pattern=r"^[0-9a-f]+$")] | None = Field(
        default=None, description="what the attempt computes (a completed run of this key may be reused)"
    )


class ProgressEvent(_Event):
    type: Literal["progress"]
    done: Count
    total: Count | None = None


class SeriesEvent(_Event):
    type: Literal["series"]
    points: list[Point]


class MetricsEvent(_Event):
    type: Literal["metrics"]
    values: dict[Name, float]
    higher_is_better: dict[Name, bool] | None = None


class SamplesEvent(_Event):
    type: Literal["samples"]
    samples: list[Sample]


class LogEvent(_Event):
    type: Literal["log"]
    lines: list[LogLine]


class ArtifactEvent(_Event):
    type: Literal["artifact"]
    name: Name
    uri: NonEmptyText
    size: Count | None = None
    sha256: Annotated[str, Field(max_length=64)] | None = None


class CacheEntry(Body):
    key: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
    value: Text = Field(description="the answer, as JSON text (the server keeps it as it is)")


class CacheEvent(_Event):
    """Answers of model requests, stored in the project's request cache as the attempt goes."""

    type: Literal["cache"]
    entries: list[CacheEntry]


Event = Annotated[
    StatusEvent
    | ProgressEvent
    | SeriesEvent
    | MetricsEvent
    | SamplesEvent
    | LogEvent
    | ArtifactEvent
    | CacheEvent,
    Field(discriminator="type"),
]
EVENT_TYPES = ("status", "progress", "series", "metrics", "samples", "log", "artifact", "cache")


class EventBatch(Body):
    stream: Name
    attempt: Int64 | None = None
    events: list[Event] = Field(default_factory=list)


class Rejected(BaseModel):
    seq: int
    error: str


class EventAnswer(BaseModel):
    """What the server answers an event batch: counts, the run's status (a cancel shows up here) and
    the lease: how long the attempt may stay silent before the server declares it lost."""

    model_config = ConfigDict(extra="allow")

    applied: int
    duplicates: int
    rejected: list[Rejected] = Field(default_factory=list)
    run_status: RunStatus
    attempt: int
    lease_s: float


__all__ = [
    "EVENT_TYPES",
    "ArtifactEvent",
    "CacheEntry",
    "CacheEvent",
    "Event",
    "EventAnswer",
    "EventBatch",
    "LogEvent",
    "LogLine",
    "MetricsEvent",
    "Point",
    "ProgressEvent",
    "Rejected",
    "Sample",
    "SamplesEvent",
    "SeriesEvent",
    "StatusEvent",
]
