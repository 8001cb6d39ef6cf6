"""A run's per-sample results, paged by index."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from evalhub.protocol import responses as r
from evalhub.protocol.scoring import SampleColumns

from ..deps import COMMON_ERRORS, JSON, CallerDep, Limit, Offset, RunId, StoreDep, errors

router = APIRouter(prefix="/api/runs", tags=["samples"], responses=COMMON_ERRORS)


@router.get("/{run_id}/samples", response_model=r.Page[r.StoredSample], responses=errors(404))
def run_samples(run_id: RunId, c: CallerDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0) -> Any:
    return JSON(store.reads.samples(c.project_id, run_id, limit, offset))


@router.get("/{run_id}/scores", response_model=r.SampleScores, responses=errors(404))
def run_scores(
    run_id: RunId,
    c: CallerDep,
    store: StoreDep,
    after: Annotated[
        str | None, Query(max_length=255, description="the ``next`` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 10_000,
) -> Any:
    """Every sample's key, subtask and scores, paged in key order (what paired statistics align)."""
    return JSON(store.reads.sample_scores(c.project_id, run_id, after, limit))


@router.get("/{run_id}/columns", response_model=SampleColumns, responses=errors(404))
def run_columns(
    run_id: RunId,
    c: CallerDep,
    store: StoreDep,
    fields: Annotated[
        list[str],
        Query(
            min_length=1,
            max_length=64,
            description="score:<key>, doc:<column>, task, index, primary_score, latency_ms, tokens_in, "
            "tokens_out, prompt_chars, output_chars, reference_chars (repeated)",
        ),
    ],
    after: Annotated[
        str | None, Query(max_length=255, description="the ``next`` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 50_000,
) -> Any:
    """A run's samples as columns, paged in sample-key order (what slicing reads)."""
    return JSON(store.columns.read(c.project_id, run_id, fields, after, limit))
