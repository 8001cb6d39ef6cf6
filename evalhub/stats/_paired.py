"""Paired comparison of two runs that answered the same items.

For 0/1 metrics (acc, exact_match): McNemar's exact test (two-sided binomial test on the discordant
pairs) and Newcombe's score interval for a difference of paired proportions (his method 10). For
every other metric: a paired percentile bootstrap of the mean difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evalhub.stats._bootstrap import percentile_interval, percentile_p_value, resampled_means
from evalhub.stats._intervals import wilson_interval
from evalhub.stats._values import as_floats, check_confidence, is_binary

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from evalhub.stats._values import Values

COMPARE_RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedComparison:
    """A candidate run against a baseline on the items both answered.

    ``delta`` is ``candidate_mean - baseline_mean``; (``low``, ``high``) its ``confidence`` interval;
    ``p_value`` the two-sided p-value of "no difference" (unadjusted; see :func:`holm`). ``method`` is
    ``"mcnemar"`` (interval ``"newcombe"``), ``"bootstrap"`` (interval ``"percentile"``) or ``"none"``.
    For 0/1 metrics ``better``/``worse`` count the discordant items (the candidate right and the
    baseline wrong, and the reverse). ``dropped`` counts items left out because either value was
    missing. Where a figure can't be computed it is NaN and ``reason`` says why; ``reason`` also notes
    a defined but degenerate answer (no discordant pairs, identical runs).
    """

    delta: float
    low: float
    high: float
    p_value: float
    n: int
    method: str
    interval: str
    baseline_mean: float
    candidate_mean: float
    confidence: float = 0.95
    resamples: int | None = None
    seed: int | None = None
    better: int | None = None
    worse: int | None = None
    dropped: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar_exact(better: int, worse: int) -> float:
    """Two-sided exact McNemar p-value: ``binomtest(better, better + worse, 0.5)``.

    ``better`` and ``worse`` are the discordant pair counts. With no discordant pairs there is no
    evidence of a difference and the p-value is 1.
    """
    from scipy.stats import binomtest

    if better < 0 or worse < 0:
        raise ValueError(f"discordant counts must be non-negative, got {better} and {worse}")
    if better + worse == 0:
        return 1.0
    return float(binomtest(int(better), int(better + worse), 0.5, alternative="two-sided").pvalue)


def newcombe_interval(
    both: int, better: int, worse: int, neither: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's score interval (1998, method 10) for ``p1 - p2`` from a paired 2x2 table.

    ``p1`` is the candidate's proportion ``(both + better) / n`` and ``p2`` the baseline's
    ``(both + worse) / n``. Each gets Wilson's interval (l1, u1), (l2, u2); with ``phi`` the
    continuity-corrected correlation of the table (0 when a margin is empty),

        low  = d - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
        high = d + sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)

    R. G. Newcombe, Improved confidence intervals for the difference between binomial proportions
    based on paired data, Statistics in Medicine 17 (1998) 2635-2650. ``(nan, nan)`` for an empty table.

    >>> newcombe_interval(59, 6, 16, 80)  # Cavo et al. 2012, in Fagerland, Lydersen & Laake (2017)
    (-0.1186..., -0.0046...)
    """
    check_confidence(confidence)
    cells = (both, better, worse, neither)
    if any(c < 0 for c in cells):
        raise ValueError(f"table counts must be non-negative, got {cells}")
    n = both + better + worse + neither
    if n == 0:
        return math.nan, math.nan
    p1, p2 = (both + better) / n, (both + worse) / n
    l1, u1 = wilson_interval(both + better, n, confidence)
    l2, u2 = wilson_interval(both + worse, n, confidence)
    margins = float(both + better) * float(worse + neither) * float(both + worse) * float(better + neither)
    phi = 0.0
    if margins > 0:
        cross = float(both) * float(neither) - float(better) * float(worse)
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return max(-1.0, low), min(1.0, high)


def _pairs(
    baseline: Values, candidate: Values
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    base = as_floats(baseline, "baseline")
    cand = as_floats(candidate, "candidate")
    if base.shape != cand.shape:
        raise ValueError(
            f"baseline and candidate must hold one value per shared item in the same order "
            f"(got {base.size} and {cand.size} values)"
        )
    return base, cand, ~(np.isnan(base) | np.isnan(cand))


def _decide_binary(base: NDArray[np.float64], cand: NDArray[np.float64], binary: bool | None) -> bool:
    found = is_binary(base, cand)
    if binary and not found:
        raise ValueError("binary=True but the values are not all 0 or 1")
    return found if binary is None else binary


def _empty(interval: str, confidence: float, dropped: int) -> PairedComparison:
    nan = math.nan
    return PairedComparison(
        nan, nan, nan, nan, 0, "none", interval, nan, nan, confidence, dropped=dropped,
        reason="no item has a value in both runs",
    )  # fmt: skip


def _mcnemar(
    base: NDArray[np.float64], cand: NDArray[np.float64], confidence: float, dropped: int
) -> PairedComparison:
    n = int(base.size)
    if n == 0:
        return _empty("newcombe", confidence, dropped)
    better = int(np.count_nonzero((cand == 1.0) & (base == 0.0)))
    worse = int(np.count_nonzero((cand == 0.0) & (base == 1.0)))
    both = int(np.count_nonzero((cand == 1.0) & (base == 1.0)))
    neither = n - better - worse - both
    low, high = newcombe_interval(both, better, worse, neither, confidence)
    reason = "no discordant pairs: the runs agree on every item" if better + worse == 0 else None
    return PairedComparison(
        (better - worse) / n, low, high, mcnemar_exact(better, worse), n, "mcnemar", "newcombe",
        float(base.mean()), float(cand.mean()), confidence, better=better, worse=worse,
        dropped=dropped, reason=reason,
    )  # fmt: skip


def _bootstrap(
    base: NDArray[np.float64],
    cand: NDArray[np.float64],
    means: NDArray[np.float64] | None,
    confidence: float,
    resamples: int,
    seed: int,
    dropped: int,
) -> PairedComparison:
    """``means``: the resampled mean differences when the caller drew them (shared by several runs)."""
    n = int(base.size)
    if n == 0:
        return _empty("percentile", confidence, dropped)
    diff = cand - base
    delta = float(diff.mean())
    low = high = p_value = math.nan
    reason = None
    if n == 1:
        reason = "a single paired item: no interval or test"
    else:
        if np.all(diff == diff[0]):
            reason = (
                "the runs agree on every item"
                if diff[0] == 0
                else f"every paired difference equals {diff[0]:g}: the bootstrap distribution is one point"
            )
        if means is None:
            means = resampled_means(diff, resamples, seed)
        low, high = percentile_interval(means, confidence)
        p_value = percentile_p_value(means)
    return PairedComparison(
        delta, low, high, p_value, n, "bootstrap", "percentile", float(base.mean()), float(cand.mean()),
        confidence, resamples, seed, dropped=dropped, reason=reason,
    )  # fmt: skip


def paired_bootstrap_drawn(
    base: NDArray[np.float64],
    cand: NDArray[np.float64],
    means: NDArray[np.float64],
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> PairedComparison:
    """The paired bootstrap of complete, aligned, continuous values whose resampled mean differences
    ``means`` the caller drew (:func:`resampled_means` of ``cand - base`` with ``seed``, perhaps in one
    call with other rows: the draw is the same). Exactly ``paired_compare(base, cand, binary=False, …)``."""
    return _bootstrap(base, cand, means, confidence, resamples, seed, 0)


def paired_compare(
    baseline: Values,
    candidate: Values,
    *,
    binary: bool | None = None,
    confidence: float = 0.95,
    resamples: int = COMPARE_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Compare a candidate run's per-item scores with a baseline's on the same items.

    ``baseline[i]`` and ``candidate[i]`` are the two runs' scores of item ``i`` (aligned by sample key
    beforehand); an item missing in either (NaN/None) is left out and counted in ``dropped``. 0/1
    scores (decided from the data; force with ``binary``) get McNemar's exact test and Newcombe's
    interval; others a paired percentile bootstrap of the mean difference with ``resamples`` resamples
    drawn from ``seed`` (recorded in the result; see ``evalhub.stats._bootstrap`` for the exact draw).

    >>> c = paired_compare([1, 0, 0, 1, 0], [1, 1, 1, 1, 0])
    >>> c.method, c.delta, c.better, c.worse
    ('mcnemar', 0.4, 2, 0)
    """
    check_confidence(confidence)
    base, cand, keep = _pairs(baseline, candidate)
    dropped = int(keep.size - np.count_nonzero(keep))
    base, cand = base[keep], cand[keep]
    if _decide_binary(base, cand, binary):
        return _mcnemar(base, cand, confidence, dropped)
    return _bootstrap(base, cand, None, confidence, resamples, seed, dropped)


def paired_compare_many(
    baseline: Values,
    candidates: Mapping[str, Values],
    *,
    binary: bool | None = None,
    confidence: float = 0.95,
    resamples: int = COMPARE_RESAMPLES,
    seed: int = 0,
) -> dict[str, PairedComparison]:
    """:func:`paired_compare` of every candidate against one baseline, in one pass.

    The answer for each candidate is exactly what ``paired_compare`` gives it alone (same seed, same
    resampled items); candidates whose items line up (the same items present) share the drawn
    resamples, so comparing four runs costs little more than comparing two. The 0/1 decision is made
    once over all runs, so one metric gets one method. Feed the p-values to :func:`holm`.
    """
    check_confidence(confidence)
    prepared = {name: _pairs(baseline, values) for name, values in candidates.items()}
    if binary is None:
        binary = all(is_binary(b[k], c[k]) for b, c, k in prepared.values())
    out: dict[str, PairedComparison] = {}
    groups: dict[bytes, list[str]] = {}  # items present -> candidates to bootstrap together
    for name, (base, cand, keep) in prepared.items():
        dropped = int(keep.size - np.count_nonzero(keep))
        if _decide_binary(base[keep], cand[keep], binary):
            out[name] = _mcnemar(base[keep], cand[keep], confidence, dropped)
        else:
            groups.setdefault(np.packbits(keep).tobytes(), []).append(name)
    for names in groups.values():
        keep = prepared[names[0]][2]
        diffs = np.stack([prepared[n][1][keep] - prepared[n][0][keep] for n in names])
        means = resampled_means(diffs, resamples, seed) if diffs.shape[1] >= 2 else None
        for row, name in enumerate(names):
            base, cand, _ = prepared[name]
            dropped = int(keep.size - np.count_nonzero(keep))
            shared = means[row] if means is not None else None
            out[name] = _bootstrap(base[keep], cand[keep], shared, confidence, resamples, seed, dropped)
    return {name: out[name] for name in candidates}
