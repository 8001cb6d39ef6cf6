"""Scorers: ways to score a run's stored samples again without generating, each application recorded.

- :class:`ExactMatch`: a normalised exact match (lm-eval's options: case, punctuation, digits, regexes);
- :class:`Regex`: the answer taken out of the output by a pattern, then matched;
- :class:`LmEvalMetric`: any of lm-eval's metrics by name (``exact_match``, ``bleu``, ``chrf``, …, ROUGE);
- :class:`Function`: a Python function ``def score(sample) -> dict``;
- :class:`Judge`: an LLM judge (MT-Bench single/pair, Prometheus absolute, reference-guided, pairwise
  against a baseline in both orders) run as its own worker on the cluster.

>>> from evalhub.scorers import ExactMatch, Judge
>>> exp.score(ExactMatch(ignore_case=True, strip=True))          # <name>.exact_match beside exact_match
>>> exp.score(Judge("tiny-judge/step-300", mode="pairwise", baseline="step-100"))
>>> exp.compare(baseline="step-100")                             # rescored keys get paired deltas too

A spec's ``scorers:`` entries are dicts: ``{type: exact_match | regex | lm_eval | python | judge, …}``
with the same options (:func:`from_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalhub.errors import InvalidValue
from evalhub.scorers._base import Scorer, Values, answer_of
from evalhub.scorers._function import Function
from evalhub.scorers._judge import Judge, PairOutcome
from evalhub.scorers._lm_eval import LmEvalMetric
from evalhub.scorers._match import ExactMatch, Regex, normalize
from evalhub.scorers._templates import TEMPLATES, JudgeTemplate
from evalhub.scorers._verdicts import Verdict, parse_pair, parse_prometheus, parse_single

KINDS: dict[str, Any] = {
    "exact_match": ExactMatch,
    "match": ExactMatch,
    "regex": Regex,
    "lm_eval": LmEvalMetric,
    "metric": LmEvalMetric,
    "python": Function,
    "function": Function,
    "judge": Judge,
}
"""A spec entry's ``type`` -> its scorer class."""


def from_spec(entry: Mapping[str, Any] | Scorer) -> Scorer:
    """A scorer from a spec's ``scorers:`` entry (``{type: regex, pattern: ..., name: ...}``)."""
    if isinstance(entry, Scorer):
        return entry
    if not isinstance(entry, Mapping):
        raise InvalidValue(f"a scorer entry is a mapping with a 'type', got {type(entry).__name__}")
    options = dict(entry)
    kind = options.pop("type", None)
    cls = KINDS.get(str(kind))
    if cls is None:
        raise InvalidValue(f"scorer type {kind!r} is unknown; use one of {', '.join(sorted(set(KINDS)))}")
    if cls is Function:
        fn = options.pop("function", None)
        if not fn:
            raise InvalidValue("a python scorer needs 'function: module:function'")
        return Function(fn, **options)
    if cls is Regex:
        pattern = options.pop("pattern", None)
        if not pattern:
            raise InvalidValue("a regex scorer needs a 'pattern'")
        return Regex(pattern, **options)
    if cls is LmEvalMetric:
        metric = options.pop("metric", None)
        if not metric:
            raise InvalidValue("an lm_eval scorer needs a 'metric' (exact_match, bleu, chrf, …)")
        return LmEvalMetric(metric, **options)
    if cls is Judge:
        judge = options.pop("judge", None) or {
            k: options.pop(k) for k in ("model", "checkpoint") if k in options
        }
        if "scale" in options and options["scale"] is not None:
            options["scale"] = tuple(options["scale"])
        return Judge(judge, **options)
    try:
        scorer: Scorer = cls(**options)
    except TypeError as exc:
        raise InvalidValue(f"scorer {kind!r}: {exc}") from None
    return scorer


__all__ = [
    "KINDS",
    "TEMPLATES",
    "ExactMatch",
    "Function",
    "Judge",
    "JudgeTemplate",
    "LmEvalMetric",
    "PairOutcome",
    "Regex",
    "Scorer",
    "Values",
    "Verdict",
    "answer_of",
    "from_spec",
    "normalize",
    "parse_pair",
    "parse_prometheus",
    "parse_single",
]
