"""Scores over stored outputs: a scoring of a run starts, takes its results in batches and finishes
with summary metrics; scorings are listed per run or experiment; the judge calls on a run's samples."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from evalhub.protocol import INT64_MAX
from evalhub.protocol import responses as r
from evalhub.protocol import scoring as s

from ..deps import COMMON_ERRORS, JSON, CallerDep, Filter, Limit, Offset, RunId, StoreDep, errors

router = APIRouter(prefix="/api", tags=["scorings"], responses=COMMON_ERRORS)

ScoringId = Annotated[int, Path(ge=1, le=INT64_MAX, description="a scoring id")]
OptionalId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]


@router.post("/scorings", status_code=201, response_model=s.Scoring, responses=errors(404, 409))
def create_scoring(body: s.ScoringCreate, c: CallerDep, store: StoreDep) -> Any:
    """Start a rescoring of a finished run (409 while it is queued or running); the same
    ``client_key`` again answers the first one (200). Starting one under a name the run was scored
    with before removes that name's scores first."""
    scoring, created = store.scoring.create(c.project_id, body.model_dump())
    return JSON(scoring, status_code=201 if created else 200)


@router.get("/scorings", response_model=r.Page[s.Scoring])
def list_scorings(
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    run_id: OptionalId = None,
    experiment_id: OptionalId = None,
    name: Filter = None,
) -> Any:
    return JSON(
        store.scoring.list_scorings(
            c.project_id, limit, offset, run_id=run_id, experiment_id=experiment_id, name=name
        )
    )


@router.get("/scorings/{scoring_id}", response_model=s.Scoring, responses=errors(404))
def get_scoring(scoring_id: ScoringId, c: CallerDep, store: StoreDep) -> Any:
    return JSON(store.scoring.get(c.project_id, scoring_id))


@router.post("/scorings/{scoring_id}/results", response_model=s.ScoringApplied, responses=errors(404, 409))
def scoring_results(scoring_id: ScoringId, body: s.ScoringResults, c: CallerDep, store: StoreDep) -> Any:
    """Per-sample scores (keys ``<name>.<metric>``) merged into the run's samples, and judge calls
    stored with them (idempotent: the same batch again changes nothing)."""
    return JSON(store.scoring.results(c.project_id, scoring_id, body.items))


@router.post("/scorings/{scoring_id}/finish", response_model=s.Scoring, responses=errors(404, 409))
def finish_scoring(scoring_id: ScoringId, body: s.ScoringFinish, c: CallerDep, store: StoreDep) -> Any:
    """End the scoring: its summary metrics go among the run's metrics, its counts are recorded."""
    return JSON(store.scoring.finish(c.project_id, scoring_id, body.model_dump()))


@router.get("/runs/{run_id}/judge-calls", response_model=r.Page[s.StoredJudgeCall], responses=errors(404))
def judge_calls(
    run_id: RunId,
    c: CallerDep,
    store: StoreDep,
    limit: Limit = 100,
    offset: Offset = 0,
    sample_key: Filter = None,
    scoring_id: OptionalId = None,
) -> Any:
    """Every judge call on the run's samples (or one sample's, or one scoring's): the rendered
    prompt, the raw output, the parsed verdict (null when unparseable), the rationale, the judge."""
    return JSON(
        store.scoring.judge_calls(
            c.project_id, run_id, limit, offset, sample_key=sample_key, scoring_id=scoring_id
        )
    )
