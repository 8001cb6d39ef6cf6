"""Reading a judge's verdict from its raw answer: never a guess.

- MT-Bench ``single``: the rating in ``[[n]]`` (FastChat also takes ``[n]`` when no ``[[n]]`` is there);
  several different ratings, or one outside the scale, is no verdict.
- MT-Bench ``pair``: ``[[A]]``, ``[[B]]`` or ``[[C]]`` (a tie); an answer naming none of them, or more
  than one different one, is no verdict.
- Prometheus absolute: the integer after ``[RESULT]``, within the scale; the feedback before it is the
  rationale.

Each answers a :class:`Verdict`: ``verdict`` (the text read: ``"7"``, ``"A"``, ``"B"``, ``"tie"``) and
``score`` (a rating; for a pair None), both None when nothing could be read; ``rationale`` is the
judge's explanation (its answer without the verdict).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_DOUBLE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SINGLE = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
_PAIR = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_RESULT = re.compile(r"\[RESULT\]\s*\(?\s*(\d+(?:\.\d+)?)\s*\)?")
_PAIR_VERDICT = {"A": "A", "B": "B", "C": "tie"}


class Verdict(NamedTuple):
    verdict: str | None
    score: float | None
    rationale: str | None


def _number(text: str) -> float:
    return float(text)


def _rating(values: list[str], scale: tuple[int, int]) -> float | None:
    found = {_number(v) for v in values}
    if len(found) != 1:
        return None
    value = found.pop()
    lo, hi = scale
    return value if lo <= value <= hi else None


def _label(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def parse_single(text: str, scale: tuple[int, int] = (1, 10)) -> Verdict:
    """An MT-Bench ``single`` rating (``Rating: [[7]]``)."""
    text = text or ""
    matches = _DOUBLE.findall(text) or _SINGLE.findall(text)
    value = _rating(matches, scale) if matches else None
    rationale = _DOUBLE.sub("", text).strip() or None
    if value is None:
        return Verdict(None, None, rationale)
    return Verdict(_label(value), value, rationale)


def parse_pair(text: str) -> Verdict:
    """An MT-Bench ``pair`` verdict: ``A``, ``B`` or ``tie`` (``[[C]]``)."""
    text = text or ""
    found = set(_PAIR.findall(text))
    rationale = _PAIR.sub("", text).strip() or None
    if len(found) != 1:
        return Verdict(None, None, rationale)
    return Verdict(_PAIR_VERDICT[found.pop()], None, rationale)


def parse_prometheus(text: str, scale: tuple[int, int] = (1, 5)) -> Verdict:
    """A Prometheus absolute grade: ``<feedback> [RESULT] n``."""
    text = text or ""
    matches = _RESULT.findall(text)
    head = text.split("[RESULT]")[0].strip()
    rationale = re.sub(r"^\s*(###\s*)?Feedback:\s*", "", head).strip() or None
    value = _rating(matches, scale) if matches else None
    if value is None or not value.is_integer():
        return Verdict(None, None, rationale)
    return Verdict(_label(value), value, rationale)


def parse(parser: str, text: str, scale: tuple[int, int]) -> Verdict:
    """The verdict of ``text`` under one of the parsers of :mod:`evalhub.scorers._templates`."""
    if parser == "mt_bench_single":
        return parse_single(text, scale)
    if parser == "mt_bench_pair":
        return parse_pair(text)
    if parser == "prometheus":
        return parse_prometheus(text, scale)
    raise ValueError(f"unknown verdict parser {parser!r}")


__all__ = ["Verdict", "parse", "parse_pair", "parse_prometheus", "parse_single"]
