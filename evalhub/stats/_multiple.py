"""Adjusting p-values for a family of comparisons (several runs against one baseline, several slices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def holm(p_values: ArrayLike) -> NDArray[np.float64]:
    """Holm's step-down adjusted p-values, in the order given.

    With the ``m`` non-NaN p-values sorted ascending, ``p_(1) <= … <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max over j <= i of min(1, (m - j + 1) * p_(j))``. A difference is significant at
    level ``alpha`` when its adjusted value is ``<= alpha``; this controls the family-wise error rate.
    NaN entries (a comparison that could not be made) stay NaN and are not counted in ``m``. (scipy
    ships Benjamini-Hochberg as ``false_discovery_control`` but not Holm.)

    >>> holm([0.01, 0.04, 0.03, float("nan")]).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of p-values, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0.0) | (p[finite] > 1.0)):
        raise ValueError("p-values must lie between 0 and 1")
    out = np.full(p.shape, np.nan)
    where = np.flatnonzero(finite)
    m = where.size
    if m == 0:
        return out
    order = np.argsort(p[where], kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[where][order])
    out[where[order]] = np.maximum.accumulate(scaled)
    return out
