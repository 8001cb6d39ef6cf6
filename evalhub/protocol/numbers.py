"""Numbers on the wire: NaN and ±infinity are values (a diverging loss is data), but JSON has no
spelling for them, so they travel as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
(protobuf's JSON mapping; pydantic reads them back as floats, and so does :func:`from_wire`).
"""

from __future__ import annotations

import math
from typing import Any

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"
_NONFINITE = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf, "nan": math.nan, "inf": math.inf,
              "-inf": -math.inf}  # fmt: skip


def float_to_wire(value: float) -> float | str:
    """A float as JSON can carry it: itself, or one of the three strings."""
    if value - value == 0.0:  # finite (NaN and ±inf give NaN here)
        return value
    if value != value:
        return NAN
    return POS_INF if value > 0 else NEG_INF


def to_wire(value: Any) -> Any:
    """``value`` (dicts, lists, tuples, numbers, …) with every non-finite float spelled as a string."""
    if type(value) is float:
        return float_to_wire(value)
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def from_wire(value: Any) -> Any:
    """A number read from JSON: the three strings become NaN/±inf; anything else is returned as is."""
    if type(value) is str:
        return _NONFINITE.get(value, value)
    return value


def number_from_wire(value: Any) -> float | None:
    """A JSON number (or one of the three strings, or null) as a float or None."""
    if value is None:
        return None
    if type(value) is str:
        found = _NONFINITE.get(value)
        if found is None:
            raise ValueError(f"not a number: {value!r}")
        return found
    return float(value)


__all__ = ["NAN", "NEG_INF", "POS_INF", "float_to_wire", "from_wire", "number_from_wire", "to_wire"]
