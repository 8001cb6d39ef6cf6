"""Turning what callers hand in (lists, polars columns, arrays with NaN) into clean float arrays."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    from numpy.typing import ArrayLike, NDArray

    Values: TypeAlias = ArrayLike | Sequence[float | None]
    """Per-item values: a list (None for a missing value), a numpy array or a polars column (NaN/null)."""


def as_floats(values: Values, name: str) -> NDArray[np.float64]:
    """``values`` as a 1-D float array (``None`` becomes NaN); a clear error for anything else."""
    if isinstance(values, list | tuple):
        values = [math.nan if v is None else v for v in values]
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers (or None for a missing value): {exc}") from exc
    if out.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of per-item values, got shape {out.shape}")
    return out


def is_binary(*arrays: NDArray[np.float64]) -> bool:
    """Whether every non-NaN value of every array is 0 or 1 (a 0/1 metric such as acc or exact_match)."""
    for array in arrays:
        finite = array[~np.isnan(array)]
        if not np.all((finite == 0.0) | (finite == 1.0)):
            return False
    return True


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
