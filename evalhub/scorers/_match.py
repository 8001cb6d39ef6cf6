"""Built-in scorers: a normalised exact match, and a regex that takes the answer out of the output.

:class:`ExactMatch` normalises both sides as lm-eval's ``exact_match`` does (Hugging Face ``evaluate``'s
metric: ``regexes_to_ignore`` removed, then case, punctuation and digits dropped on request), so
rescoring with the options of a task's metric reproduces its scores. :class:`Regex` first takes the
answer out of the output with a pattern (its first match, a capture group of it), as lm-eval's
``regex`` filter does, then compares it with the reference the same way.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evalhub.errors import InvalidValue
from evalhub.scorers._base import Scorer, Values, answer_of, check_name

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)


def normalize(
    text: str,
    *,
    regexes_to_ignore: Sequence[str] = (),
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
    strip: bool = False,
) -> str:
    """``text`` as an exact match compares it (the order of HF ``evaluate``'s ``exact_match``)."""
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text)
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    if ignore_numbers:
        text = text.translate(_DIGITS)
    if strip:
        text = text.strip()
    return text


class ExactMatch(Scorer):
    """1.0 where the answer equals the reference after normalisation, else 0.0 (``<name>.exact_match``).

    >>> exp.score(evalhub.scorers.ExactMatch(ignore_case=True, ignore_punctuation=True, strip=True))
    """

    kind: ClassVar[str] = "match"

    def __init__(
        self,
        name: str = "em",
        *,
        regexes_to_ignore: Sequence[str] = (),
        ignore_case: bool = False,
        ignore_punctuation: bool = False,
        ignore_numbers: bool = False,
        strip: bool = False,
    ) -> None:
        self.name = check_name(name)
        for pattern in regexes_to_ignore:
            _compile(pattern, "regexes_to_ignore")
        self.options: dict[str, Any] = {
            "regexes_to_ignore": list(regexes_to_ignore),
            "ignore_case": ignore_case,
            "ignore_punctuation": ignore_punctuation,
            "ignore_numbers": ignore_numbers,
            "strip": strip,
        }

    def config(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {"exact_match": True}

    def _equal(self, answer: str, reference: str) -> float:
        return float(normalize(answer, **self.options) == normalize(reference, **self.options))

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        out: list[Values] = []
        for sample in samples:
            reference = sample.get("reference")
            if reference is None:
                out.append({"exact_match": None})
                continue
            out.append({"exact_match": self._equal(answer_of(sample), str(reference))})
        return out


class Regex(ExactMatch):
    """Takes the answer out of the output with ``pattern`` (its first match; capture ``group``), then
    scores it like :class:`ExactMatch`: ``<name>.exact_match``, and ``<name>.found`` (1.0 where the
    pattern matched at all). An output the pattern does not match answers ``fallback`` (lm-eval's
    ``[invalid]`` by default), which matches no reference.

    >>> exp.score(evalhub.scorers.Regex(r"answer is (\\-?[0-9]+)", name="strict"))
    """

    kind: ClassVar[str] = "regex"

    def __init__(
        self,
        pattern: str,
        name: str = "regex",
        *,
        group: int = 1,
        fallback: str = "[invalid]",
        flags: str = "",
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        bits = 0
        for flag in flags:
            if flag not in "ims":
                raise InvalidValue(f"regex flags are i, m and s; got {flags!r}")
            bits |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[flag]
        self.regex = _compile(pattern, "pattern", bits)
        if group > self.regex.groups:
            raise InvalidValue(
                f"pattern {pattern!r} has {self.regex.groups} capture group(s): group {group} does not exist"
            )
        self.pattern, self.group, self.fallback, self.flags = pattern, group, fallback, flags

    def config(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "group": self.group, "fallback": self.fallback, "flags": self.flags,
                **self.options}  # fmt: skip

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {"exact_match": True, "found": True}

    def extract(self, text: str) -> str | None:
        """The answer the pattern takes out of ``text`` (None: no match)."""
        match = self.regex.search(text)
        if match is None:
            return None
        return match.group(self.group) if self.regex.groups else match.group(0)

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        out: list[Values] = []
        for sample in samples:
            found = self.extract(answer_of(sample))
            reference = sample.get("reference")
            value: float | None = None
            if reference is not None:
                value = self._equal(found if found is not None else self.fallback, str(reference))
            out.append({"exact_match": value, "found": float(found is not None)})
        return out


def _compile(pattern: str, what: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise InvalidValue(f"{what} {pattern!r} is not a valid regular expression: {exc}") from None


__all__ = ["ExactMatch", "Regex", "normalize"]
