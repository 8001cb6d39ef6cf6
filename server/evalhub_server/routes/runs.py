"""Runs: created (a training run, or one outside an experiment), listed, read; status changes through
the state machine, cancel, a lost attempt reported; corrected, deleted, restored; their logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from evalhub.protocol import (
    INT64_MAX,
    AttemptLost,
    Patch,
    RunCreate,
    RunReuse,
    RunStatus,
    RunType,
    StatusChange,
)
from evalhub.protocol import responses as r

from ..deps import (
    COMMON_ERRORS,
    JSON,
    Archived,
    CallerDep,
    Filter,
    Limit,
    Offset,
    Purge,
    RunId,
    StoreDep,
    errors,
)

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=COMMON_ERRORS)


@router.post("", status_code=201, response_model=r.Run, responses=errors(404))
def create_run(body: RunCreate, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.create_run(c.project_id, body.model_dump()), status_code=201)


@router.get("", response_model=r.Page[r.Run])
def list_runs(
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    experiment_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    status: RunStatus | None = None,
    type: RunType | None = None,
    model: Filter = None,
    task: Filter = None,
    name: Filter = None,
    archived: Archived = False,
) -> Any:
    return JSON(
        store.runs.list_runs(
            c.project_id, limit, offset, archived=archived, experiment_id=experiment_id, status=status,
            type=type, model=model, task=task, name=name,
        )
    )  # fmt: skip


@router.get("/{run_id}", response_model=r.Run, responses=errors(404))
def get_run(run_id: RunId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.get_run(c.project_id, run_id))


@router.patch("/{run_id}", response_model=r.Run, responses=errors(404))
def patch_run(run_id: RunId, body: Patch, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.patch_run(c.project_id, run_id, body.model_dump()))


@router.delete("/{run_id}", response_model=r.Deleted, responses=errors(404))
def delete_run(run_id: RunId, c: CallerDep, store: StoreDep, purge: Purge = False) -> Any:
    """Archive the run (hidden from lists and comparisons, restorable), or purge it with everything
    it holds (series, samples, metrics, logs, artifacts)."""
    return JSON(store.runs.delete_run(c.project_id, run_id, purge=purge))


@router.post("/{run_id}/restore", response_model=r.Run, responses=errors(404))
def restore_run(run_id: RunId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.restore_run(c.project_id, run_id))


@router.post("/{run_id}/status", response_model=r.Run, responses=errors(404, 409))
def set_status(run_id: RunId, body: StatusChange, c: CallerDep, store: StoreDep) -> Any:
    """A status change the state machine checks (409 naming both states if illegal; with
    ``attempt``, 409 ``stale_attempt`` when it is not the run's current attempt)."""
    return JSON(
        store.runs.set_status(
            c.project_id, run_id, body.status, error=body.error, worker=body.worker, attempt=body.attempt
        )
    )


@router.post("/{run_id}/cancel", response_model=r.Run, responses=errors(404, 409))
def cancel_run(run_id: RunId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.cancel_run(c.project_id, run_id))


@router.post("/{run_id}/lost", response_model=r.Run, responses=errors(404))
def lost(run_id: RunId, body: AttemptLost, c: CallerDep, store: StoreDep) -> Any:
    """The caller saw this attempt's worker go away: the server re-queues the run or fails it."""
    return JSON(store.runs.lost(c.project_id, run_id, body.attempt, body.reason))


@router.post("/{run_id}/reuse", response_model=r.RunReused, responses=errors(404, 409))
def reuse(run_id: RunId, body: RunReuse, c: CallerDep, store: StoreDep) -> Any:
    """Attempt ``attempt`` computes ``work_key``: if a completed run of the project computed the same
    (checkpoint content, runtime and params, task hash, config), its metrics and samples are copied into
    this run, which completes with ``reused_from``; otherwise the key is recorded and the attempt
    evaluates. 409 ``stale_attempt`` for an attempt that is not the run's current one."""
    return JSON(store.runs.reuse(c.project_id, run_id, body.attempt, body.work_key))


@router.get("/{run_id}/logs", response_model=r.Page[r.LogEntry], responses=errors(404))
def run_logs(run_id: RunId, c: CallerDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0) -> Any:
    return JSON(store.reads.logs(c.project_id, run_id, limit, offset))
