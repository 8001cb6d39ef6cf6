"""Request bodies of the registry, runs and experiments (docs/rest-api.md has the prose)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._fields import Count, Id, Int64, JsonObject, Name, NonEmptyText, Short, Text
from .status import RunStatus, RunType


class Body(BaseModel):
    """A request body: unknown fields are ignored (older and newer clients keep working)."""

    model_config = ConfigDict(extra="ignore")


class ProjectCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class TokenCreate(Body):
    name: Name = "default"
    expires_in_days: Annotated[float, Field(gt=0, le=36500)] | None = None


class Patch(Body):
    """``PATCH`` of a registry object, run or experiment: what is given replaces or merges (tags and
    metadata are JSON Merge Patches: a key set to null is removed); what is left out stays."""

    description: Text | None = None
    tags: JsonObject | None = None
    metadata: JsonObject | None = None


class FamilyCreate(Body):
    name: Name
    modality: Annotated[str, Field(min_length=1, max_length=64)] = "llm"
    description: Text | None = None
    metadata: JsonObject | None = None


class ModelCreate(Body):
    name: Name
    family: Name
    runtime: Annotated[str, Field(min_length=1, max_length=64)]
    code_uri: Text | None = None
    adapter: Annotated[str, Field(max_length=512)] | None = None
    default_params: JsonObject | None = None
    metadata: JsonObject | None = None


class CheckpointCreate(Body):
    name: Name
    model: Name
    uri: NonEmptyText
    step: Int64 | None = None
    epoch: Annotated[float, Field(allow_inf_nan=False)] | None = None
    dataset_version: Annotated[str, Field(max_length=255)] | None = None
    training_config: JsonObject | None = None
    run_id: Id | None = None
    metadata: JsonObject | None = None


class DatasetCreate(Body):
    name: Name
    version: Annotated[str, Field(min_length=1, max_length=255)] = "1"
    uri: Text | None = None
    schema_: Annotated[JsonObject | None, Field(alias="schema")] = None
    num_rows: Count | None = None
    content_hash: Annotated[str, Field(max_length=128)] | None = None
    metadata: JsonObject | None = None


class TaskCreate(Body):
    name: Name
    type: Short | None = None
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
    experiment_id: Id | None = None
    model: Name | None = None
    checkpoint: Name | None = None
    checkpoint_id: Id | None = None
    runtime: Short | None = None
    task: Name | None = None
    config: JsonObject | None = None
    tags: JsonObject | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None


MAX_RUNS_PER_REQUEST = 1000
"""Runs per request: an experiment of more is created with its first page and grows by
``POST /experiments/{id}/runs`` pages."""

WorkKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
"""A hex digest (sha256) naming what a run computes or what a request asks."""


class ExperimentCreate(Body):
    name: Name
    spec: JsonObject | None = None
    spec_yaml: Text | None = None
    config: JsonObject | None = None
    client_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    runs: list[RunCreate] = Field(
        default_factory=list, max_length=MAX_RUNS_PER_REQUEST, description="the first page of runs"
    )

    @field_validator("runs")
    @classmethod
    def _distinct(cls, runs: list[RunCreate]) -> list[RunCreate]:
        return _distinct_names(runs)


class RunsAdd(Body):
    """``POST /experiments/{id}/runs``: a further page of an experiment's runs. A run whose name the
    experiment already has is answered as it is, not created again, so a retried page adds nothing."""

    runs: list[RunCreate] = Field(min_length=1, max_length=MAX_RUNS_PER_REQUEST)

    @field_validator("runs")
    @classmethod
    def _distinct(cls, runs: list[RunCreate]) -> list[RunCreate]:
        return _distinct_names(runs)


def _distinct_names(runs: list[RunCreate]) -> list[RunCreate]:
    """An experiment's runs are known by name (a retried page is matched by it): one name, one run."""
    seen: set[str] = set()
    for run in runs:
        if run.name in seen:
            raise ValueError(
                f"two runs are named {run.name!r}: the runs of an experiment need distinct names"
            )
        seen.add(run.name)
    return runs


class RunReuse(Body):
    """``POST /runs/{id}/reuse``: attempt ``attempt`` (running) computes ``work_key``; if a completed run
    of the project computed the same, its results are copied into this run, which completes."""

    attempt: Int64
    work_key: WorkKey


class CacheLookup(Body):
    """``POST /cache/lookup``: the stored answers of these request keys (those the cache has)."""

    keys: list[WorkKey] = Field(max_length=MAX_RUNS_PER_REQUEST)


class StatusChange(Body):
    """``POST /runs/{id}/status``: a change the state machine checks (a re-queue is not one of them:
    that is the server's decision when an attempt is lost)."""

    status: RunStatus
    error: Text | None = None
    worker: JsonObject | None = None
    attempt: Int64 | None = None


class AttemptLost(Body):
    """``POST /runs/{id}/lost``: the caller saw attempt ``attempt``'s worker go away (``reason``). The
    server re-queues the run (attempts left, an evaluation run) or fails it with the reason."""

    attempt: Int64
    reason: Text = "the worker went away"


__all__ = [
    "MAX_RUNS_PER_REQUEST",
    "AttemptLost",
    "BenchmarkCreate",
    "Body",
    "CacheLookup",
    "CheckpointCreate",
    "DatasetCreate",
    "ExperimentCreate",
    "FamilyCreate",
    "ModelCreate",
    "Patch",
    "ProjectCreate",
    "RunCreate",
    "RunReuse",
    "RunsAdd",
    "StatusChange",
    "TaskCreate",
    "TokenCreate",
    "WorkKey",
]
