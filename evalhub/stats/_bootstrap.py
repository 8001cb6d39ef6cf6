"""The resampling core shared by the paired comparison and the slice estimates.

One definition of a bootstrap resample, so that any caller can reproduce it directly: with
``rng = numpy.random.default_rng(seed)``, resample ``r`` (``r = 0, 1, …``) is the item indices
``rng.integers(0, n, size=n)`` drawn in order. The draws are made in blocks of resamples (one call for
many resamples, never a Python loop per resample) and the blocks continue the same random stream, so
the result is identical to drawing one resample at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

# elements per block of drawn indices: 2**22 int64 = 32 MiB, plus as much for the gathered values
_BLOCK_ELEMENTS = 1 << 22


def resampled_means(values: NDArray[np.float64], resamples: int, seed: int) -> NDArray[np.float64]:
    """The mean of each bootstrap resample of ``values`` (shape ``(n,)`` or ``(k, n)``).

    Returns shape ``(resamples,)`` for one row of values, ``(k, resamples)`` for ``k`` rows resampled
    with the same indices (several runs' differences to one baseline share the resampled items, as the
    items are what is resampled). ``n`` must be at least 1.
    """
    rows = np.atleast_2d(np.asarray(values, dtype=np.float64))
    k, n = rows.shape
    if n == 0:
        raise ValueError("cannot resample an empty set of items")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    out = np.empty((k, resamples), dtype=np.float64)
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, resamples, block):  # blocks of resamples, bounded memory
        stop = min(resamples, start + block)
        indices = rng.integers(0, n, size=(stop - start, n))
        for j in range(k):
            out[j, start:stop] = np.take(rows[j], indices).mean(axis=1)
    return out[0] if np.ndim(values) == 1 else out


def percentile_interval(estimates: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap estimates (numpy's linear quantiles)."""
    alpha = 1.0 - confidence
    low, high = np.quantile(estimates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def percentile_p_value(estimates: NDArray[np.float64]) -> float:
    """Two-sided p-value of "no difference" from bootstrap estimates of a difference.

    Twice the share of resampled estimates on the far side of zero (``<= 0`` or ``>= 0``, the smaller),
    counted as ``(count + 1) / (resamples + 1)`` so that a finite resample never claims ``p = 0``;
    capped at 1. It is the inversion of the percentile interval: ``p < 1 - confidence`` roughly when the
    interval excludes zero.
    """
    resamples = estimates.size
    below = int(np.count_nonzero(estimates <= 0.0))
    above = int(np.count_nonzero(estimates >= 0.0))
    return float(min(1.0, 2.0 * (min(below, above) + 1) / (resamples + 1)))
