"""Experiments: created with their runs in one request, read with counts and progress, compared,
their samples aligned across runs; corrected, cancelled, deleted (with their runs) and restored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from evalhub.protocol import ExperimentCreate, Patch, RunsAdd, RunStatus
from evalhub.protocol import responses as r

from ..deps import (
    COMMON_ERRORS,
    JSON,
    Archived,
    CallerDep,
    ExpId,
    Filter,
    Limit,
    Offset,
    Purge,
    StoreDep,
    errors,
)
from ..errors import Invalid

router = APIRouter(prefix="/api/experiments", tags=["experiments"], responses=COMMON_ERRORS)


@router.post("", status_code=201, response_model=r.ExperimentCreated, responses=errors(404))
def create_experiment(body: ExperimentCreate, c: CallerDep, store: StoreDep) -> Any:
    """Create an experiment and its runs in one transaction; the same ``client_key`` again answers
    the first one (200): nothing is submitted twice."""
    exp, created = store.runs.create_experiment(c.project_id, body.model_dump())
    return JSON(exp, status_code=201 if created else 200)


@router.post("/{exp_id}/runs", response_model=r.RunsAdded, responses=errors(404))
def add_runs(exp_id: ExpId, body: RunsAdd, c: CallerDep, store: StoreDep) -> Any:
    """A further page of the experiment's runs (at most 1,000 per request): a run whose name the
    experiment has already is answered as it is, so a retried page creates nothing twice."""
    return JSON(store.runs.add_runs(c.project_id, exp_id, [run.model_dump() for run in body.runs]))


@router.post("/{exp_id}/resume", response_model=r.Experiment, responses=errors(404))
def resume_experiment(exp_id: ExpId, c: CallerDep, store: StoreDep) -> Any:
    """Failed and cancelled runs go back to ``queued`` as their next attempt; completed runs stay (a
    scheduler then evaluates only what is missing, the request cache answering what was asked before)."""
    return JSON(store.runs.resume_experiment(c.project_id, exp_id))


@router.get("", response_model=r.Page[r.Experiment])
def list_experiments(
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    status: RunStatus | None = None,
    name: Filter = None,
    archived: Archived = False,
) -> Any:
    return JSON(
        store.runs.list_experiments(c.project_id, limit, offset, status=status, name=name, archived=archived)
    )


@router.get("/{exp_id}", response_model=r.Experiment, responses=errors(404))
def get_experiment(exp_id: ExpId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.get_experiment(c.project_id, exp_id))


@router.patch("/{exp_id}", response_model=r.Experiment, responses=errors(404))
def patch_experiment(exp_id: ExpId, body: Patch, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.patch_experiment(c.project_id, exp_id, body.model_dump()))


@router.delete("/{exp_id}", response_model=r.Deleted, responses=errors(404))
def delete_experiment(exp_id: ExpId, c: CallerDep, store: StoreDep, purge: Purge = False) -> Any:
    """Archive (or purge) the experiment and its runs."""
    return JSON(store.runs.delete_experiment(c.project_id, exp_id, purge=purge))


@router.post("/{exp_id}/restore", response_model=r.Experiment, responses=errors(404))
def restore_experiment(exp_id: ExpId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.runs.restore_experiment(c.project_id, exp_id))


@router.post("/{exp_id}/cancel", response_model=r.Experiment, responses=errors(404))
def cancel_experiment(exp_id: ExpId, c: CallerDep, store: StoreDep) -> Any:
    """Every queued or running run becomes ``cancelled`` (workers stop between batches)."""
    return JSON(store.runs.cancel_experiment(c.project_id, exp_id))


@router.get("/{exp_id}/runs", response_model=r.Page[r.Run], responses=errors(404))
def experiment_runs(
    exp_id: ExpId,
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    status: RunStatus | None = None,
    task: Filter = None,
) -> Any:
    store.runs.get_experiment(c.project_id, exp_id)
    return JSON(
        store.runs.list_runs(c.project_id, limit, offset, experiment_id=exp_id, status=status, task=task)
    )


@router.get("/{exp_id}/compare", response_model=r.Comparison, responses=errors(404))
def compare(exp_id: ExpId, c: CallerDep, store: StoreDep, limit: Limit = 1000, offset: Offset = 0) -> Any:
    """One page of the experiment's runs with their metrics (``total``: every run; page with
    ``offset``); the metric names and directions are those of the page's runs."""
    return JSON(store.reads.compare(c.project_id, exp_id, limit, offset))


@router.get("/{exp_id}/samples", response_model=r.AlignedSamples, responses=errors(404))
def experiment_samples(
    exp_id: ExpId,
    c: CallerDep,
    store: StoreDep,
    task: Filter = None,
    filter: Annotated[
        str,
        Query(
            max_length=32,
            description="all, disagree, any_wrong, all_wrong or mixed (runs disagree on correctness)",
        ),
    ] = "all",
    q: Filter = None,
    keys: Annotated[list[str] | None, Query(max_length=200, description="only these sample keys")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Per-sample outputs of the experiment's runs of ``task``, aligned by sample key, filtered and
    paged in SQL (``keys`` repeated: just those items)."""
    if keys is not None and any(len(k) > 255 for k in keys):
        raise Invalid("a sample key has at most 255 characters", field="query.keys")
    return JSON(store.reads.aligned_samples(c.project_id, exp_id, task, filter, q, limit, offset, keys=keys))
