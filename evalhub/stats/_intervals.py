"""A metric's mean over items with its confidence interval: Wilson for 0/1 metrics, bootstrap otherwise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evalhub.stats._bootstrap import percentile_interval, resampled_means
from evalhub.stats._values import as_floats, check_confidence, is_binary

if TYPE_CHECKING:
    from collections.abc import Hashable

    from numpy.typing import ArrayLike

    from evalhub.stats._values import Values

SLICE_RESAMPLES = 1_000


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` items with its interval (``low``, ``high``) and how it was computed.

    ``method`` is ``"wilson"``, ``"bootstrap"`` or ``"none"`` (no interval could be made; ``reason``
    says why). ``dropped`` counts the items left out because their value was missing (NaN/None).
    """

    mean: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95
    resamples: int | None = None
    seed: int | None = None
    dropped: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``successes / n`` (scipy's, without continuity correction).

    ``(nan, nan)`` when ``n == 0``.

    >>> wilson_interval(81, 263)  # Newcombe (1998a), example (i)
    (0.2553..., 0.3662...)
    """
    from scipy.stats import binomtest

    check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes} of {n}")
    if n == 0:
        return math.nan, math.nan
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def mean_interval(
    values: Values,
    *,
    binary: bool | None = None,
    confidence: float = 0.95,
    resamples: int = SLICE_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """The mean of per-item ``values`` with a ``confidence`` interval.

    0/1 values (decided from the data: every value is 0 or 1; force with ``binary``) get Wilson's score
    interval; other values a percentile bootstrap of the mean (``resamples`` resamples of the items,
    drawn from ``seed``; see ``evalhub.stats._bootstrap``). Missing values (NaN/None) are left out
    and counted in ``dropped``. No items: every figure NaN with the reason. One item, or all values
    equal: the interval is that value, said in ``reason``.

    >>> mean_interval([1, 0, 1, 1]).method
    'wilson'
    """
    check_confidence(confidence)
    array = as_floats(values, "values")
    present = array[~np.isnan(array)]
    dropped = int(array.size - present.size)
    n = int(present.size)
    use_wilson = is_binary(present) if binary is None else binary
    if binary and not is_binary(present):
        raise ValueError("binary=True but the values are not all 0 or 1")
    if n == 0:
        return Estimate(
            math.nan,
            math.nan,
            math.nan,
            0,
            "none",
            confidence,
            dropped=dropped,
            reason="no items with a value",
        )
    mean = float(present.mean())
    if use_wilson:
        low, high = wilson_interval(int(present.sum()), n, confidence)
        return Estimate(mean, low, high, n, "wilson", confidence, dropped=dropped)
    reason = None
    if np.all(present == present[0]):
        low = high = mean
        reason = "a single item" if n == 1 else "every item has the same value"
    else:
        low, high = percentile_interval(resampled_means(present, resamples, seed), confidence)
    return Estimate(mean, low, high, n, "bootstrap", confidence, resamples, seed, dropped, reason)


def slice_estimates(
    values: Values,
    slices: ArrayLike,
    *,
    binary: bool | None = None,
    confidence: float = 0.95,
    resamples: int = SLICE_RESAMPLES,
    seed: int = 0,
) -> dict[Hashable, Estimate]:
    """:func:`mean_interval` of ``values`` within each slice (``slices[i]`` names the slice of item ``i``).

    The 0/1 decision is made once over all values, so every slice of one metric uses the same method.
    Each slice's bootstrap draws from ``seed`` on its own, so a slice's interval does not depend on
    which other slices exist. Slices come back in sorted order.

    >>> slice_estimates([1, 0, 1, 1], ["algebra", "algebra", "geometry", "geometry"])["geometry"].mean
    1.0
    """
    array = as_floats(values, "values")
    keys = np.asarray(slices)
    if keys.shape != array.shape:
        raise ValueError(f"values and slices differ in length ({array.size} and {keys.size})")
    if binary is None:
        binary = is_binary(array)
    names, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(names.size + 1))
    out: dict[Hashable, Estimate] = {}
    for i, name in enumerate(names.tolist()):
        members = array[order[bounds[i] : bounds[i + 1]]]
        out[name] = mean_interval(
            members, binary=binary, confidence=confidence, resamples=resamples, seed=seed
        )
    return out
