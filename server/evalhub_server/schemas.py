"""Request bodies (pydantic). Responses are plain dicts built by the store (see docs/rest-api.md)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _finite_json(value: Any, path: str = "") -> Any:
    """Refuse NaN/inf anywhere inside a free JSON value (Python's json accepts them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r}{' at ' + path if path else ''} is not allowed")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_json(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_json(v, f"{path}[{i}]")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_finite_json)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Status = Literal["queued", "running", "completed", "failed", "cancelled"]
RunType = Literal["training", "inference", "offline_eval"]


class Body(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")


class ProjectCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class TokenCreate(Body):
    name: Name = "default"


class FamilyCreate(Body):
    name: Name
    modality: Annotated[str, Field(min_length=1, max_length=64)] = "llm"
    description: str | None = None
    metadata: JsonObject | None = None


class ModelCreate(Body):
    name: Name
    family: Name
    runtime: Annotated[str, Field(min_length=1, max_length=64)]
    code_uri: str | None = None
    adapter: Annotated[str, Field(max_length=512)] | None = None
    default_params: JsonObject | None = None
    metadata: JsonObject | None = None


class CheckpointCreate(Body):
    name: Name
    model: Name
    uri: Annotated[str, Field(min_length=1)]
    step: int | None = None
    epoch: float | None = None
    dataset_version: Annotated[str, Field(max_length=255)] | None = None
    training_config: JsonObject | None = None
    run_id: int | None = None
    metadata: JsonObject | None = None


class DatasetCreate(Body):
    name: Name
    version: Annotated[str, Field(min_length=1, max_length=255)] = "1"
    uri: str | None = None
    schema_: Annotated[JsonObject | None, Field(alias="schema")] = None
    num_rows: int | None = None
    content_hash: Annotated[str, Field(max_length=128)] | None = None
    metadata: JsonObject | None = None


class TaskCreate(Body):
    name: Name
    type: Annotated[str, Field(max_length=64)] | None = None
    dataset: Name | None = None
    engine: Annotated[str, Field(min_length=1, max_length=64)] = "lm_eval"
    engine_config: JsonObject
    metrics: list[Name] = Field(default_factory=list)
    metadata: JsonObject | None = None


class BenchmarkCreate(Body):
    name: Name
    tasks: list[Name]
    config: JsonObject | None = None
    metadata: JsonObject | None = None


class RunCreate(Body):
    name: Name
    type: RunType = "inference"
    experiment_id: int | None = None
    model: Name | None = None
    checkpoint: Name | None = None
    checkpoint_id: int | None = None
    runtime: Annotated[str, Field(max_length=64)] | None = None
    task: Name | None = None
    config: JsonObject | None = None
    tags: JsonObject | None = None


class ExperimentCreate(Body):
    name: Name
    spec: JsonObject | None = None
    spec_yaml: str | None = None
    config: JsonObject | None = None
    client_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    runs: list[RunCreate] = Field(default_factory=list)


class StatusChange(Body):
    status: Status
    error: str | None = None
    worker: JsonObject | None = None


# ---- events -------------------------------------------------------------------------------------


class Point(Body):
    key: Name
    step: int
    value: float
    wall_time: float | None = None


class Sample(Body):
    sample_key: Name
    index: int | None = None
    prompt: str | None = None
    reference: str | None = None
    output: str | None = None
    filtered_output: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    primary_score: float | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    extra: JsonObject | None = None


class LogLine(Body):
    level: Annotated[str, Field(max_length=16)] = "info"
    message: str
    wall_time: float | None = None


class _Event(Body):
    seq: Annotated[int, Field(ge=1)]


class StatusEvent(_Event):
    type: Literal["status"]
    status: Status
    worker: JsonObject | None = None
    error: str | None = None


class ProgressEvent(_Event):
    type: Literal["progress"]
    done: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0)] | None = None


class SeriesEvent(_Event):
    type: Literal["series"]
    points: list[Point]


class MetricsEvent(_Event):
    type: Literal["metrics"]
    values: dict[Name, float]


class SamplesEvent(_Event):
    type: Literal["samples"]
    samples: list[Sample]


class LogEvent(_Event):
    type: Literal["log"]
    lines: list[LogLine]


class ArtifactEvent(_Event):
    type: Literal["artifact"]
    name: Name
    uri: Annotated[str, Field(min_length=1)]
    size: int | None = None
    sha256: Annotated[str, Field(max_length=64)] | None = None


Event = Annotated[
    StatusEvent | ProgressEvent | SeriesEvent | MetricsEvent | SamplesEvent | LogEvent | ArtifactEvent,
    Field(discriminator="type"),
]


class EventBatch(Body):
    stream: Name
    events: list[Event]
