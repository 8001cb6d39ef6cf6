"""Word-level differences between two answers, as segments the front end colours."""

from __future__ import annotations

import difflib
import re

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_MAX_TOKENS = 2000  # beyond this, diffing costs more than it shows


def tokens(text: str) -> list[str]:
    """Words, punctuation and whitespace runs; joined back they give ``text`` unchanged."""
    return _TOKEN.findall(text)


def word_diff(base: str, other: str) -> list[list[str]]:
    """``other`` as segments against ``base``: ``["=", text]`` same, ``["+", text]`` added or
    changed, ``["-", text]`` a part of ``base`` that ``other`` lacks.

    >>> word_diff("the cat sat", "the dog sat")
    [['=', 'the '], ['-', 'cat'], ['+', 'dog'], ['=', ' sat']]
    """
    a, b = tokens(base), tokens(other)
    if len(a) > _MAX_TOKENS or len(b) > _MAX_TOKENS:
        return [["=", other]] if base == other else [["+", other]]
    segments: list[list[str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            _push(segments, "=", "".join(b[j1:j2]))
        else:
            if i2 > i1:
                _push(segments, "-", "".join(a[i1:i2]))
            if j2 > j1:
                _push(segments, "+", "".join(b[j1:j2]))
    return segments


def _push(segments: list[list[str]], op: str, text: str) -> None:
    if not text:
        return
    if segments and segments[-1][0] == op:
        segments[-1][1] += text
    else:
        segments.append([op, text])
