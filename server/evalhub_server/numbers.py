"""Non-finite numbers in the database. Neither MariaDB's DOUBLE nor SQLite's REAL keeps all of NaN and
±infinity, so they are stored as NULL (NaN) and ±DBL_MAX (±infinity): MIN and MAX keep their order
(NaN is skipped, as NumPy's nanmin does) and every read maps them back to the wire's strings.

The one value that cannot round-trip is ±DBL_MAX itself (1.7976931348623157e308), read back as
±infinity.
"""

from __future__ import annotations

import sys
from typing import Any

from evalhub.protocol.numbers import NAN, NEG_INF, POS_INF

DBL_MAX = sys.float_info.max


def store(value: float) -> float | None:
    """A float as its column keeps it."""
    if value - value == 0.0:
        return value
    if value != value:
        return None
    return DBL_MAX if value > 0 else -DBL_MAX


def store_or_none(value: float | None) -> float | None:
    """For a nullable column where NULL means "no value": NaN is stored as NULL (absent) too."""
    return None if value is None else store(value)


def wire(value: Any) -> float | str:
    """A stored value of a column where NULL means NaN, as the wire carries it."""
    if value is None:
        return NAN
    if value >= DBL_MAX:
        return POS_INF
    if value <= -DBL_MAX:
        return NEG_INF
    return float(value)


def wire_column(values: list[Any]) -> list[Any]:
    """A column of stored values where NULL means NaN, as the wire carries it (the list itself when
    every value is finite, as nearly all are: one scan in C instead of a call per value)."""
    if None not in values and (not values or (-DBL_MAX < min(values) and max(values) < DBL_MAX)):
        return values
    return [wire(v) for v in values]


def wire_or_none(value: Any) -> float | str | None:
    """A stored value of a column where NULL means "no value"."""
    return None if value is None else wire(value)


__all__ = ["DBL_MAX", "store", "store_or_none", "wire", "wire_column", "wire_or_none"]
