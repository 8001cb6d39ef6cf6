"""Response bodies: what the server answers, and what the client reads (docs/rest-api.md has the prose).

Numbers that may be NaN or ±infinity are typed ``WireFloat``: a float, or one of the wire's strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"``; reading a body through these models turns them into floats.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .status import RunStatus, RunType

PROTOCOL_VERSION = 3
"""The version of this contract. 1 was evalhub 0.1.0 (no leases, NaN refused); 2 adds run leases,
attempts, non-finite values, PATCH/DELETE, token lifetimes and paged raw series reads; 3 adds runs
added in pages, resume, reuse of finished work (``work_key``, ``reused_from``), the request cache
and paged comparisons."""

T = TypeVar("T")

WireFloat = float  # pydantic reads "NaN"/"Infinity"/"-Infinity" into floats and writes them back so


class Model(BaseModel):
    """A response body: unknown fields are kept (a newer server may send more)."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="strings")


class ErrorDetail(Model):
    code: str = Field(
        description="invalid, unauthorized, not_found, conflict, stale_attempt, too_large, internal"
    )
    message: str
    field: str | None = Field(default=None, description="the input at fault, e.g. body.name or query.limit")


class Error(Model):
    """Every error answer: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorDetail


class Page(Model, Generic[T]):
    """One page of a list: ``items``, the ``total`` count, and the ``limit``/``offset`` asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Health(Model):
    status: str
    version: str = Field(description="the server's evalhub version")
    protocol: int = Field(description="the contract version it speaks (evalhub.protocol.PROTOCOL_VERSION)")
    db: str
    auth: bool
    schema_: str | None = Field(default=None, alias="schema")
    lease_s: float
    max_text_bytes: int
    max_request_bytes: int


class Project(Model):
    id: int
    name: str
    created_at: str


class TokenCreated(Model):
    """A new token: ``token`` is shown once (the server keeps its SHA-256 only)."""

    token: str
    name: str
    project: str
    expires_at: str | None = None


class TokenInfo(Model):
    name: str
    project: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None


class Common(Model):
    """Fields every registry object, run and experiment carries."""

    id: int
    project: str
    name: str
    created_at: str
    description: str = ""
    tags: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    archived_at: str | None = Field(
        default=None, description="set when deleted (soft); restorable until purged"
    )


class Family(Common):
    modality: str


class ModelImpl(Common):
    family: str
    runtime: str
    code_uri: str | None = None
    adapter: str | None = None
    default_params: dict[str, Any] = Field(default_factory=dict)


class Checkpoint(Common):
    model: str
    uri: str
    step: int | None = None
    epoch: float | None = None
    dataset_version: str | None = None
    training_config: dict[str, Any] = Field(default_factory=dict)
    run_id: int | None = None


class Dataset(Common):
    version: str
    uri: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    num_rows: int | None = None
    content_hash: str | None = None


class Task(Common):
    type: str | None = None
    dataset: str | None = None
    engine: str
    engine_config: dict[str, Any]
    metrics: list[str] = Field(default_factory=list)


class Benchmark(Common):
    tasks: list[str]
    config: dict[str, Any] = Field(default_factory=dict)


class Progress(Model):
    done: int
    total: int | None = None


class Run(Common):
    type: RunType
    status: RunStatus
    experiment_id: int | None = None
    model: str | None = None
    checkpoint: str | None = None
    checkpoint_id: int | None = None
    step: int | None = Field(default=None, description="the checkpoint's step")
    runtime: str | None = None
    task: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    attempt: int
    max_attempts: int
    lease_expires_at: str | None = None
    worker: dict[str, Any] | None = None
    error: str | None = None
    progress: Progress
    started_at: str | None = None
    ended_at: str | None = None
    work_key: str | None = Field(default=None, description="what the run computes (see reuse)")
    reused_from: int | None = Field(
        default=None, description="the run whose results this one carries (it was not evaluated again)"
    )


class RunRef(Model):
    id: int
    name: str
    status: RunStatus


class RunsAdded(Model):
    """The runs of a page: ``created`` new ones, the others were there already (a retried page)."""

    experiment_id: int
    created: int
    runs: list[RunRef]


class RunReused(Model):
    """``reused``: the run now carries a completed run's results (see ``run.reused_from``)."""

    reused: bool
    run: Run


class CacheValues(Model):
    """The request cache's answers (JSON text) of the keys it has."""

    values: dict[str, str]


class Counts(Model):
    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class Experiment(Common):
    spec: dict[str, Any] = Field(default_factory=dict)
    spec_yaml: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    client_key: str | None = None
    status: RunStatus = Field(
        description="derived from its runs: running > queued > failed > cancelled > completed"
    )
    counts: Counts
    progress: Progress


class ExperimentCreated(Experiment):
    runs: list[Run] = Field(default_factory=list, description="the first 1,000 runs (page the rest)")


class Metrics(Model):
    metrics: dict[str, WireFloat]


class SeriesKey(Model):
    key: str
    count: int
    last_step: int
    last_value: WireFloat
    min_step: int
    max_step: int


class SeriesKeys(Model):
    keys: list[SeriesKey]


class SeriesPoint(Model):
    step: int
    value: WireFloat
    min: WireFloat
    max: WireFloat
    wall_time: float | None = None


class Series(Model):
    key: str
    total: int
    downsampled: bool
    points: list[SeriesPoint]


class RunSeries(Series):
    run_id: int


class ManySeries(Model):
    series: list[RunSeries]


class RawPoints(Model):
    """One page of a series' every raw point, in (step, arrival) order, as three columns of one length
    (the i-th point is ``step[i], value[i], wall_time[i]``); ``next`` continues it."""

    key: str
    total: int
    step: list[int]
    value: list[WireFloat]
    wall_time: list[float | None]
    next: str | None = Field(default=None, description="cursor of the next page (null: that was the last)")


class StoredSample(Model):
    sample_key: str
    index: int | None = None
    task: str | None = None
    prompt: str | None = None
    reference: str | None = None
    output: str | None = None
    filtered_output: str | None = None
    scores: dict[str, WireFloat] = Field(default_factory=dict)
    primary_score: WireFloat | None = None
    latency_ms: WireFloat | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    extra: dict[str, Any] | None = None


class ScoredSample(Model):
    sample_key: str
    task: str | None = None
    scores: dict[str, WireFloat] = Field(default_factory=dict)


class SampleScores(Model):
    """One page of a run's per-sample scores in sample-key order; ``next`` continues it."""

    run_id: int
    items: list[ScoredSample]
    next: str | None = None


class LogEntry(Model):
    id: int
    level: str
    message: str
    wall_time: float | None = None


class ArtifactInfo(Model):
    name: str
    uri: str
    size: int | None = None
    sha256: str | None = None
    created_at: str | None = None


class ComparedRun(Model):
    run_id: int
    name: str
    model: str | None = None
    checkpoint: str | None = None
    step: int | None = None
    runtime: str | None = None
    task: str | None = None
    status: RunStatus
    metrics: dict[str, WireFloat]


class Comparison(Model):
    """One page of an experiment's runs with their metrics (``total`` runs in all)."""

    experiment_id: int
    total: int | None = None
    limit: int | None = None
    offset: int | None = None
    metrics: list[str]
    higher_is_better: dict[str, bool] = Field(default_factory=dict)
    runs: list[ComparedRun]


class AlignedOutput(Model):
    output: str | None = None
    filtered_output: str | None = None
    scores: dict[str, WireFloat] = Field(default_factory=dict)
    primary_score: WireFloat | None = None


class AlignedSample(Model):
    sample_key: str
    index: int | None = None
    prompt: str | None = None
    reference: str | None = None
    outputs: dict[str, AlignedOutput] = Field(description="by run id")


class RunLabel(Model):
    run_id: int
    label: str


class AlignedSamples(Model):
    task: str
    runs: list[RunLabel]
    total: int
    limit: int
    offset: int
    items: list[AlignedSample]


class Deleted(Model):
    """What a DELETE did: archived (restorable) or purged (gone), and the objects it took along."""

    kind: str
    id: int
    purged: bool
    archived_at: str | None = None
    cascaded: dict[str, list[int]] = Field(default_factory=dict)


__all__ = [
    "PROTOCOL_VERSION",
    "AlignedOutput",
    "AlignedSample",
    "AlignedSamples",
    "ArtifactInfo",
    "Benchmark",
    "CacheValues",
    "Checkpoint",
    "Common",
    "ComparedRun",
    "Comparison",
    "Counts",
    "Dataset",
    "Deleted",
    "Error",
    "ErrorDetail",
    "Experiment",
    "ExperimentCreated",
    "Family",
    "Health",
    "LogEntry",
    "ManySeries",
    "Metrics",
    "Model",
    "ModelImpl",
    "Page",
    "Progress",
    "Project",
    "RawPoints",
    "Run",
    "RunLabel",
    "RunRef",
    "RunReused",
    "RunSeries",
    "RunsAdded",
    "SampleScores",
    "ScoredSample",
    "Series",
    "SeriesKey",
    "SeriesKeys",
    "SeriesPoint",
    "StoredSample",
    "Task",
    "TokenCreated",
    "TokenInfo",
]
