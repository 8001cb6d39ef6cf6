"""A run's metrics and series: the keys, a downsampled read (in SQL), every raw point (paged), and
one key across several runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from evalhub.protocol import INT64_MAX
from evalhub.protocol import responses as r

from ..deps import COMMON_ERRORS, JSON, CallerDep, MaxPoints, RunId, Step, StoreDep, errors
from ..errors import Invalid

router = APIRouter(prefix="/api", tags=["metrics and series"], responses=COMMON_ERRORS)

Key = Annotated[str, Query(min_length=1, max_length=255, description="the series key, e.g. loss")]


@router.get("/runs/{run_id}/metrics", response_model=r.Metrics, responses=errors(404))
def run_metrics(run_id: RunId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.reads.metrics(c.project_id, run_id))


@router.get("/runs/{run_id}/series/keys", response_model=r.SeriesKeys, responses=errors(404))
def series_keys(run_id: RunId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.reads.series_keys(c.project_id, run_id))


@router.get("/runs/{run_id}/series", response_model=r.Series, responses=errors(404))
def run_series(
    run_id: RunId,
    key: Key,
    c: CallerDep,
    store: StoreDep,
    max_points: MaxPoints = 1000,
    min_step: Step = None,
    max_step: Step = None,
) -> Any:
    """Every point when there are at most ``max_points``; else buckets (last point, min, max), in SQL."""
    return JSON(store.reads.series(c.project_id, run_id, key, max_points, min_step, max_step))


@router.get("/runs/{run_id}/series/points", response_model=r.RawPoints, responses=errors(404))
def raw_points(
    run_id: RunId,
    key: Key,
    c: CallerDep,
    store: StoreDep,
    after: Annotated[
        str | None, Query(max_length=32, description="the ``next`` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 50_000,
) -> Any:
    """Every raw point of a series, one page at a time, in step order (memory bounded on both sides)."""
    return JSON(store.reads.raw_points(c.project_id, run_id, key, after, limit))


@router.get("/series", response_model=r.ManySeries, responses=errors(404))
def many_series(
    run_ids: Annotated[str, Query(max_length=4096, description="comma-separated run ids (at most 100)")],
    key: Key,
    c: CallerDep,
    store: StoreDep,
    max_points: MaxPoints = 1000,
) -> Any:
    try:
        ids = [int(x) for x in run_ids.split(",") if x.strip()]
        if any(not 1 <= i <= INT64_MAX for i in ids):
            raise ValueError
    except ValueError:
        raise Invalid(
            f"run_ids must be comma-separated run ids, got '{run_ids}'", field="query.run_ids"
        ) from None
    return JSON(store.reads.many_series(c.project_id, ids, key, max_points))
