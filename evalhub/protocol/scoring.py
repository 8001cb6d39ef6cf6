"""Scores over stored outputs: a rescoring of a run (a *scoring*), the per-sample scores it writes, and
the judge calls behind a judge's scores (``/api/scorings``, ``/api/runs/{id}/judge-calls``).

A scoring's ``name`` is the prefix of every score key it writes: ``<name>.<metric>`` (``em.exact_match``,
``judge.score``, ``judge.win``), so a rescoring sits beside the scores the run was evaluated with and
never overwrites them. A new scoring of a run under a name the run was scored with before replaces
that name's scores (the old scoring stays in the history, with its judge calls).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._fields import Id, JsonObject, Name, Short, Text
from .requests import Body
from .responses import Model, WireFloat

ScorerName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
"""A scorer's name: a letter, then letters, digits, ``_`` or ``-`` (the prefix of its score keys)."""

ScorerKind = Literal["match", "regex", "lm_eval", "python", "judge"]
Position = Literal["single", "AB", "BA"]
"""How a judge saw a sample: alone (``single``); or beside the other run's answer, this run's answer
first (``AB``) or second (``BA``)."""
ScoringStatus = Literal["running", "completed", "failed"]


class JudgeInfo(Body):
    """The judge behind a scoring: a registered checkpoint and the runtime it ran on."""

    model: Name
    checkpoint: Name
    runtime: Short | None = None
    checkpoint_id: Id | None = None
    uri: Text | None = None


class ScoringCreate(Body):
    """``POST /api/scorings``: a rescoring of one run starts (its scores come in ``…/results``)."""

    run_id: Id
    name: ScorerName
    kind: ScorerKind
    version: Annotated[str, Field(min_length=1, max_length=64)]
    config: JsonObject | None = None
    judge: JudgeInfo | None = None
    judge_run_id: Id | None = None
    baseline_run_id: Id | None = None
    client_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class JudgeCall(Body):
    """One call of a judge on a sample: what it was shown, what it said, and what was read from it.
    ``verdict`` and ``score`` are null when the answer could not be parsed (the raw text is kept)."""

    position: Position = "single"
    other_run_id: Id | None = None
    judge: Annotated[str, Field(max_length=512)] | None = None
    prompt: Text | None = None
    raw_output: Text | None = None
    verdict: Annotated[str, Field(max_length=64)] | None = None
    score: float | None = None
    rationale: Text | None = None
    latency_ms: Annotated[float, Field(allow_inf_nan=False)] | None = None


class ScoredItem(Body):
    """A sample's new scores (keys ``<scoring name>.<metric>``; a score left out is null) and the judge
    calls behind them."""

    sample_key: Name
    scores: dict[Name, float] = Field(default_factory=dict)
    calls: list[JudgeCall] = Field(default_factory=list)


class ScoringResults(Body):
    """``POST /api/scorings/{id}/results``: a batch of scored samples (sent again, it is stored once)."""

    items: list[ScoredItem]


class ScoringFinish(Body):
    """``POST /api/scorings/{id}/finish``: the summary metrics (stored among the run's metrics), what was
    counted (scored, null, unparsed, inconsistent, …) and the outcome."""

    status: Literal["completed", "failed"] = "completed"
    metrics: dict[Name, float] = Field(default_factory=dict)
    higher_is_better: dict[Name, bool] = Field(default_factory=dict)
    counts: JsonObject | None = None
    error: Text | None = None


# ---- answers ------------------------------------------------------------------------------------


class Scoring(Model):
    id: int
    project: str
    run_id: int
    experiment_id: int | None = None
    name: str
    kind: str
    version: str
    config: dict[str, Any] = Field(default_factory=dict)
    judge: dict[str, Any] | None = None
    judge_run_id: int | None = None
    baseline_run_id: int | None = None
    status: ScoringStatus
    counts: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, WireFloat] = Field(
        default_factory=dict, description="the summary metrics it wrote (its name's keys of the run)"
    )
    error: str | None = None
    client_key: str | None = None
    created_at: str
    finished_at: str | None = None


class ScoringApplied(Model):
    """What a results batch did: samples whose scores were stored, judge calls stored, and the keys of
    the batch the run has no sample for."""

    applied: int
    calls: int
    missing: list[str] = Field(default_factory=list)


class StoredJudgeCall(Model):
    id: int
    scoring_id: int
    scorer: str
    run_id: int
    sample_key: str
    position: Position
    other_run_id: int | None = None
    judge: str | None = None
    prompt: str | None = None
    raw_output: str | None = None
    verdict: str | None = None
    score: WireFloat | None = None
    rationale: str | None = None
    latency_ms: float | None = None
    created_at: str


class SampleColumns(Model):
    """One page of a run's samples as columns (``keys[i]`` is the sample of row ``i`` of every column),
    in sample-key order; ``next`` continues it. What slicing reads: scores, data columns of the task's
    documents, derived lengths."""

    run_id: int
    keys: list[str]
    columns: dict[str, list[Any]]
    next: str | None = None


__all__ = [
    "JudgeCall",
    "JudgeInfo",
    "Position",
    "SampleColumns",
    "ScoredItem",
    "ScorerKind",
    "ScorerName",
    "Scoring",
    "ScoringApplied",
    "ScoringCreate",
    "ScoringFinish",
    "ScoringResults",
    "ScoringStatus",
    "StoredJudgeCall",
]
