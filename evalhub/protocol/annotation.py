"""People as scorers: annotation queues over an experiment's samples, the people who label them, and
their labels (``/api/annotation-queues``, ``/api/projects/{name}/people``).

A queue has a name and a schema: a ``scale`` (integers ``min``..``max``), a ``choice`` among ``options``,
a ``pairwise`` preference between two runs' answers, or free ``text``. Its items are the experiment's
samples of one task (all, a server-side filter, or a seeded random sample of them): one item per
(sample, run) for a scale, a choice or text, one per sample for a pairwise preference.

A label records who gave it: a person's token (issued by the admin, one person within one project)
labels as that person only. A label is also a per-sample score of the labelled run, under
``<queue>.<person>`` beside the run's own scores (a scale's value, a choice's index in ``options``, a
preference as 1 for the run's answer, 0 for the other run's, 0.5 for a tie). A pairwise item shows the
two answers in an order drawn per item and per person (``AB``: the item's run first), recorded with
the label.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ._fields import Id, Text
from .requests import Body
from .responses import Model, WireFloat

PersonName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
"""A person's name: a letter, then letters, digits, ``_`` or ``-`` (the metric part of a label's score key)."""

QueueName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
"""A queue's name: the prefix of the score keys its labels write (``<queue>.<person>``)."""

SchemaKind = Literal["scale", "choice", "pairwise", "text"]
Order = Literal["AB", "BA"]
Option = Annotated[str, Field(min_length=1, max_length=64)]
Preference = ("A", "B", "tie")
"""What a pairwise label says, in the order the person was shown: the first answer, the second, a tie."""


class PersonCreate(Body):
    """``POST /api/projects/{name}/people``: a token issued to one person of the project."""

    name: PersonName
    expires_in_days: Annotated[float, Field(gt=0, le=36500)] | None = None


class PersonToken(Model):
    """A person's new token: shown once; every label given with it records ``person``."""

    token: str
    name: str
    person: str
    project: str
    expires_at: str | None = None


class QueueSchema(Body):
    """What a person is asked per item."""

    kind: SchemaKind
    question: Annotated[str, Field(max_length=2000)] = ""
    min: int | None = None  # a scale's ends (both given)
    max: int | None = None
    options: Annotated[list[Option], Field(max_length=20)] | None = None  # a choice's options, in order

    @model_validator(mode="after")
    def _complete(self) -> QueueSchema:
        if self.kind == "scale":
            if self.min is None or self.max is None or self.min >= self.max or self.max - self.min > 100:
                raise ValueError("a scale needs integers min < max, at most 100 apart (min=1, max=5)")
        if self.kind == "choice" and (not self.options or len(set(self.options)) != len(self.options)):
            raise ValueError("a choice needs options: a list of distinct names")
        return self


class QueueCreate(Body):
    """``POST /api/annotation-queues``: a queue over an experiment's samples of one task.

    ``filter`` is a filter of the aligned samples (``all``, ``disagree``, ``any_wrong``, ``all_wrong``,
    ``mixed``) and ``q`` a text search in prompts, references and outputs; ``sample`` keeps that many of
    them, drawn with ``seed``. ``run_ids`` are the runs whose answers are labelled (default: every run
    of the task; a pairwise queue needs exactly two, the first is the item's run).
    """

    experiment_id: Id
    name: QueueName
    schema_: QueueSchema = Field(alias="schema")
    task: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    filter: Annotated[str, Field(max_length=32)] = "all"
    q: Annotated[str, Field(max_length=255)] | None = None
    sample: Annotated[int, Field(ge=1, le=100_000)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    run_ids: Annotated[list[Id], Field(min_length=1, max_length=50)] | None = None


class PersonProgress(Model):
    person: str
    labelled: int
    total: int


class QueueProgress(Model):
    """How far a queue is: items with at least one label, and each person's count."""

    total: int
    labelled: int
    labels: int
    people: list[PersonProgress]


class Queue(Model):
    id: int
    project: str
    experiment_id: int
    name: str
    schema_: QueueSchema = Field(alias="schema")
    task: str
    filter: str
    q: str | None = None
    sample: int | None = None
    seed: int
    run_ids: list[int]
    created_by: str | None = None
    created_at: str
    progress: QueueProgress


class Answer(Model):
    """An answer shown for an item: ``slot`` is what the person sees (``A``/``B`` for a pair)."""

    slot: str
    output: str | None = None


class LabelSubmit(Body):
    """``PUT …/items/{item_id}/label``: the caller's label of one item (a later one replaces it).

    A scale gives ``value``; a choice ``choice`` (one of the options); a pairwise item ``choice`` ``A``,
    ``B`` or ``tie`` in the order shown; free text ``text`` (a comment beside any other kind).
    ``person`` may be sent to say who labels: it must be the token's person.
    """

    value: int | None = None
    choice: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    text: Text | None = None
    person: PersonName | None = None


class Label(Model):
    id: int
    queue_id: int
    item_id: int
    sample_key: str
    run_id: int
    other_run_id: int | None = None
    person: str
    value: WireFloat | None = None  # the score written: a scale's value, a choice's index, a preference
    choice: str | None = None
    text: str | None = None
    order: Order | None = None
    created_at: str
    updated_at: str


class QueueItem(Model):
    """One item as a person sees it, with that person's label (null when not labelled yet)."""

    id: int
    index: int
    sample_key: str
    run_id: int
    other_run_id: int | None = None
    prompt: str | None = None
    reference: str | None = None
    answers: list[Answer]
    order: Order | None = None
    label: Label | None = None


__all__ = [
    "Answer",
    "Label",
    "LabelSubmit",
    "PersonCreate",
    "PersonName",
    "PersonProgress",
    "PersonToken",
    "Preference",
    "Queue",
    "QueueCreate",
    "QueueItem",
    "QueueName",
    "QueueProgress",
    "QueueSchema",
]
