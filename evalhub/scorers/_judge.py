"""LLM-as-judge: a registered checkpoint that rates answers (pointwise, plain or reference-guided) or
compares a run's answers with a baseline run's (pairwise, always in both orders).

A :class:`Judge` says who judges and how; it never calls a model itself. ``exp.score(judge)`` (see
:mod:`evalhub.services.scoring`) renders its prompts from the stored samples, runs them as a judge
experiment on the cluster (the checkpoint loaded in a worker like any model, every prompt of a run in
one batched call) and stores each call with the sample it judged.

Scores it writes (``name`` defaults to ``judge``):

- pointwise: ``<name>.score``, the rating (1-10 for MT-Bench, 1-5 for Prometheus);
- pairwise: ``<name>.win``, 1 where the run wins against the baseline, 0 where it loses, 0.5 for a tie.
  Both orders are judged; when they disagree the pair counts as a tie (``inconsistent="tie"``, the
  default) or gets no score (``inconsistent="null"``), and is counted as inconsistent either way.

An answer whose verdict cannot be read is a null score, its raw text kept with the call and counted
(``<name>.unparsed``): never a guess.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from evalhub.errors import InvalidValue
from evalhub.scorers._base import Scorer, Values, answer_of, check_name
from evalhub.scorers._templates import (
    DEFAULT_RUBRIC,
    MT_BENCH_PAIR,
    MT_BENCH_PAIR_REF,
    MT_BENCH_SINGLE,
    MT_BENCH_SINGLE_REF,
    JudgeTemplate,
    Parser,
    render,
    template_of,
)
from evalhub.scorers._verdicts import Verdict, parse

Mode = Literal["single", "reference", "pairwise"]
_DEFAULT_TEMPLATE = {"single": MT_BENCH_SINGLE, "reference": MT_BENCH_SINGLE_REF, "pairwise": MT_BENCH_PAIR}
_SIGN = {"AB": {"A": 1, "B": -1, "tie": 0}, "BA": {"A": -1, "B": 1, "tie": 0}}


@dataclass(frozen=True)
class PairOutcome:
    """A pair judged in both orders, from the run's side: ``win`` 1/0.5/0 (None: no score) and what
    happened (``win``, ``loss``, ``tie``, ``inconsistent`` or ``unparsed``)."""

    win: float | None
    outcome: str


class Judge(Scorer):
    """A judge: ``judge`` names a registered checkpoint (``"model/checkpoint"``, or a dict with
    ``model`` and ``checkpoint``); the runtime is the model's unless ``runtime`` says otherwise.

    >>> judge = evalhub.scorers.Judge("tiny-judge/step-300")                         # MT-Bench single
    >>> judge = evalhub.scorers.Judge("prometheus/7b", template="prometheus-absolute", rubric="...")
    >>> judge = evalhub.scorers.Judge("gpt/4o", mode="pairwise", baseline="step-100")  # both orders
    >>> exp.score(judge)
    """

    kind: ClassVar[str] = "judge"

    def __init__(
        self,
        judge: str | Mapping[str, Any],
        *,
        mode: Mode = "single",
        template: str | JudgeTemplate | None = None,
        baseline: str | int | None = None,
        name: str = "judge",
        rubric: str | None = None,
        parser: Parser | None = None,
        scale: tuple[int, int] | None = None,
        system: str | None = None,
        inconsistent: Literal["tie", "null"] = "tie",
        chat: bool = False,
        max_new_tokens: int = 512,
        batch_size: int | None = None,
        runtime: str | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = check_name(name)
        if isinstance(judge, str):
            model, sep, checkpoint = judge.rpartition("/")
            if not sep or not model or not checkpoint:
                raise InvalidValue(f"judge {judge!r}: name the checkpoint as 'model/checkpoint'")
        else:
            model, checkpoint = str(judge.get("model") or ""), str(judge.get("checkpoint") or "")
            if not model or not checkpoint:
                raise InvalidValue("a judge needs a model and a checkpoint")
        self.model, self.checkpoint, self.runtime = model, checkpoint, runtime
        if mode not in _DEFAULT_TEMPLATE:
            raise InvalidValue(f"judge mode must be single, reference or pairwise; got {mode!r}")
        self.mode: Mode = mode
        pair = mode == "pairwise"
        if template is None:
            chosen = _DEFAULT_TEMPLATE[mode]
        elif isinstance(template, JudgeTemplate):
            chosen = template
        elif "{" in template:  # a template text of the user's own
            chosen = JudgeTemplate(
                name="custom",
                mode="pair" if pair else "single",
                prompt=template,
                parser=parser or ("mt_bench_pair" if pair else "mt_bench_single"),
                system=system or "",
                scale=scale or (1, 10),
            )
        else:
            chosen = template_of(template)
        if (chosen.mode == "pair") != pair:
            raise InvalidValue(
                f"template {chosen.name!r} is a {'pairwise' if chosen.mode == 'pair' else 'pointwise'} "
                f"template; mode {mode!r} needs a {'pairwise' if pair else 'pointwise'} one"
            )
        if parser is not None or scale is not None or system is not None:
            chosen = JudgeTemplate(
                chosen.name, chosen.mode, chosen.prompt, parser or chosen.parser,
                chosen.system if system is None else system, scale or chosen.scale, chosen.description,
            )  # fmt: skip
        self.template = chosen
        self.baseline = baseline
        self.rubric = (
            rubric if rubric is not None else (DEFAULT_RUBRIC if "rubric" in chosen.fields() else None)
        )
        if inconsistent not in ("tie", "null"):
            raise InvalidValue(f"inconsistent must be 'tie' or 'null'; got {inconsistent!r}")
        self.inconsistent = inconsistent
        self.chat = chat
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = batch_size
        self.resources = dict(resources or {})

    # -- what is recorded -----------------------------------------------------------------------

    @property
    def pairwise(self) -> bool:
        return self.mode == "pairwise"

    @property
    def metric(self) -> str:
        """The per-sample score it writes (``score`` pointwise, ``win`` pairwise)."""
        return "win" if self.pairwise else "score"

    @property
    def version(self) -> str:
        text = json.dumps([self.template.system, self.template.prompt, self.template.parser,
                           list(self.template.scale), self.rubric], sort_keys=True)  # fmt: skip
        return f"{self.template.name}@{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    def config(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "template": self.template.name,
            "parser": self.template.parser,
            "scale": list(self.template.scale),
            "rubric": self.rubric,
            "inconsistent": self.inconsistent,
            "chat": self.chat,
            "max_new_tokens": self.max_new_tokens,
            "baseline": self.baseline,
        }

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {"score": True, "win": True, "unparsed": False, "inconsistent": False,
                "position_consistency": True, "wins": True, "losses": False}  # fmt: skip

    @property
    def judge_name(self) -> str:
        return f"{self.model}/{self.checkpoint}"

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        raise InvalidValue(
            "a judge runs as its own worker: use exp.score(judge) or hub.score(run_ids, judge)"
        )

    # -- prompts --------------------------------------------------------------------------------

    def values_of(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """What a sample offers the template's placeholders (None where it has nothing)."""
        extra = sample.get("extra") or {}
        values: dict[str, Any] = {
            "question": sample.get("prompt"),
            "prompt": sample.get("prompt"),
            "answer": answer_of(sample)
            if (sample.get("output") is not None or sample.get("filtered_output") is not None)
            else None,
            "output": sample.get("output"),
            "filtered_output": sample.get("filtered_output"),
            "reference": sample.get("reference"),
            "task": sample.get("task"),
            "sample_key": sample.get("sample_key"),
            "rubric": self.rubric,
        }
        doc = extra.get("doc") if isinstance(extra, Mapping) else None
        if isinstance(doc, Mapping):
            for key, value in doc.items():
                values[f"doc.{key}"] = None if value is None else str(value)
        return values

    def check(self, sample: Mapping[str, Any], run_id: int, other: Mapping[str, Any] | None = None) -> None:
        """Refuse a template whose placeholders this sample cannot fill, naming them and what it has."""
        mine = self.values_of(sample)
        theirs = self.values_of(other) if other is not None else None
        missing = []
        for field in self.template.fields():
            if field in ("answer_a", "answer_b"):
                if not self.pairwise:
                    missing.append(field)
                elif mine.get("answer") is None or (theirs is not None and theirs.get("answer") is None):
                    missing.append(field)
            elif field not in mine or mine[field] is None:
                missing.append(field)
        if missing:
            offered = sorted(k for k, v in mine.items() if v is not None)
            if self.pairwise:
                offered += ["answer_a", "answer_b"]
            raise InvalidValue(
                f"judge template {self.template.name!r} needs {', '.join('{' + m + '}' for m in missing)}, "
                f"which sample {sample.get('sample_key')!r} of run {run_id} does not have; "
                f"its samples offer {', '.join('{' + o + '}' for o in offered)}"
            )

    def prompt(
        self, sample: Mapping[str, Any], other: Mapping[str, Any] | None = None, position: str = "single"
    ) -> str | list[dict[str, str]]:
        """The judge's prompt for a sample (pairwise: with the other run's answer, this run's first in
        ``AB``, second in ``BA``): a text, or a chat when ``chat=True``."""
        values = {k: "" if v is None else str(v) for k, v in self.values_of(sample).items()}
        if self.pairwise:
            if other is None:
                raise InvalidValue("a pairwise judge needs the baseline's answer")
            theirs = answer_of(other)
            first, second = (values["answer"], theirs) if position == "AB" else (theirs, values["answer"])
            values["answer_a"], values["answer_b"] = first, second
        user = render(self.template.prompt, values)
        system = render(self.template.system, values) if self.template.system else ""
        if self.chat:
            return ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": user}
            ]
        return f"{system}\n\n{user}" if system else user

    def parse(self, text: str) -> Verdict:
        """The verdict of one raw answer (see :mod:`evalhub.scorers._verdicts`)."""
        return parse(self.template.parser, text, self.template.scale)

    # -- pairs ----------------------------------------------------------------------------------

    def combine(self, ab: str | None, ba: str | None) -> PairOutcome:
        """The pair's outcome for the run from its two verdicts (``AB``: the run shown first)."""
        if ab is None or ba is None or ab not in _SIGN["AB"] or ba not in _SIGN["BA"]:
            return PairOutcome(None, "unparsed")
        first, second = _SIGN["AB"][ab], _SIGN["BA"][ba]
        if first == second:
            return PairOutcome((first + 1) / 2, {1: "win", 0: "tie", -1: "loss"}[first])
        return PairOutcome(0.5 if self.inconsistent == "tie" else None, "inconsistent")


PAIRWISE_TEMPLATES = (MT_BENCH_PAIR, MT_BENCH_PAIR_REF)

__all__ = ["PAIRWISE_TEMPLATES", "Judge", "Mode", "PairOutcome"]
