"""How far to trust a judge: agreement (Cohen's kappa), position consistency, length bias."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from evalhub.stats._intervals import wilson_interval

if TYPE_CHECKING:
    from collections.abc import Hashable

    from numpy.typing import ArrayLike

Weights = Literal["linear", "quadratic"]


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa between two raters over ``n`` items both labelled.

    ``observed`` and ``expected`` are the (weighted) agreement and the agreement expected by chance
    from each rater's label frequencies; ``kappa = (observed - expected) / (1 - expected)``. NaN with a
    ``reason`` when undefined (no items, or chance agreement of 1: both raters used one same label).
    """

    kappa: float
    n: int
    observed: float
    expected: float
    weights: str | None
    labels: tuple[Hashable, ...]
    dropped: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cohen_kappa(
    rater_a: Sequence[Hashable] | ArrayLike,
    rater_b: Sequence[Hashable] | ArrayLike,
    *,
    weights: Weights | None = None,
    labels: Sequence[Hashable] | None = None,
) -> Kappa:
    """Cohen's kappa (or weighted kappa) between two raters' labels of the same items.

    ``rater_a[i]`` and ``rater_b[i]`` label item ``i``; an item either left unlabelled (None/NaN) is
    left out and counted in ``dropped``. ``labels`` is the ordered set of categories (default: the
    sorted labels seen); with ``weights`` (``"linear"`` or ``"quadratic"``, for ordered scales)
    disagreement is weighted by the distance between the categories' positions in ``labels``, so pass
    the whole scale (``labels=range(1, 6)``) when some values went unused. Agrees with scikit-learn's
    ``cohen_kappa_score``.

    >>> cohen_kappa([1, 2, 3, 3], [1, 2, 3, 2]).kappa
    0.636...
    """
    a_all, b_all = list(np.asarray(rater_a, dtype=object)), list(np.asarray(rater_b, dtype=object))
    if len(a_all) != len(b_all):
        raise ValueError(f"the raters labelled different numbers of items ({len(a_all)} and {len(b_all)})")
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    pairs = [(a, b) for a, b in zip(a_all, b_all, strict=True) if not (_missing(a) or _missing(b))]
    dropped = len(a_all) - len(pairs)
    categories = tuple(labels) if labels is not None else tuple(sorted({x for p in pairs for x in p}))
    position = {label: i for i, label in enumerate(categories)}
    if len(position) != len(categories):
        raise ValueError("labels must not repeat")
    unknown = {x for p in pairs for x in p if x not in position}
    if unknown:
        raise ValueError(f"labels {sorted(map(str, unknown))} are not in the given labels {list(categories)}")
    n = len(pairs)
    if n == 0:
        return Kappa(
            math.nan, 0, math.nan, math.nan, weights, categories, dropped, "no item labelled by both"
        )
    k = len(categories)
    ia = np.fromiter((position[a] for a, _ in pairs), dtype=np.intp, count=n)
    ib = np.fromiter((position[b] for _, b in pairs), dtype=np.intp, count=n)
    confusion = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k) / n
    chance = np.outer(confusion.sum(axis=1), confusion.sum(axis=0))
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.float64)
    if weights is None:
        disagreement = (distance > 0).astype(np.float64)
    else:
        disagreement = distance if weights == "linear" else distance**2
    observed_dis = float(np.sum(disagreement * confusion))
    expected_dis = float(np.sum(disagreement * chance))
    # agreement on the scale of the weights: 1 - disagreement / (largest disagreement)
    scale = float(disagreement.max()) if k > 1 else 1.0
    observed, expected = 1.0 - observed_dis / scale, 1.0 - expected_dis / scale
    if expected_dis == 0.0:
        return Kappa(
            math.nan, n, observed, expected, weights, categories, dropped,
            "chance agreement is 1 (both raters gave every item one same label): kappa is undefined",
        )  # fmt: skip
    return Kappa(1.0 - observed_dis / expected_dis, n, observed, expected, weights, categories, dropped)


# -- pairwise judges -----------------------------------------------------------------------------------

_FIRST = ("a", "[[a]]")
_SECOND = ("b", "[[b]]")
_TIE = ("tie", "c", "[[c]]", "draw")


def verdict_sign(verdict: Any) -> float:
    """A pairwise verdict as +1 (the first answer shown wins), -1 (the second wins), 0 (a tie) or NaN.

    Accepts ``"A"``/``"B"``/``"tie"`` (also MT-Bench's ``"[[A]]"``, ``"[[B]]"``, ``"[[C]]"``, and ``"C"``
    or ``"draw"`` for a tie, any case) or a number already on that scale; None (unparseable) is NaN.
    """
    if _missing(verdict):
        return math.nan
    if isinstance(verdict, bool):
        raise ValueError(f"not a pairwise verdict: {verdict!r}")
    if isinstance(verdict, int | float | np.integer | np.floating):
        return float(np.sign(verdict))
    text = str(verdict).strip().lower()
    if text in _FIRST:
        return 1.0
    if text in _SECOND:
        return -1.0
    if text in _TIE:
        return 0.0
    raise ValueError(f"not a pairwise verdict: {verdict!r} (use 'A', 'B', 'tie' or None)")


@dataclass(frozen=True)
class Consistency:
    """Share of pairs whose verdict survives swapping the answers' order, with its Wilson interval."""

    share: float
    low: float
    high: float
    n: int
    consistent: int
    unparsed: int
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def position_consistency(
    first_order: Sequence[Any], swapped_order: Sequence[Any], confidence: float = 0.95
) -> Consistency:
    """Position consistency of a pairwise judge.

    ``first_order[i]`` is the verdict on pair ``i`` shown as (X, Y), ``swapped_order[i]`` the verdict
    on the same pair shown as (Y, X); each is ``"A"``/``"B"``/``"tie"`` (see :func:`verdict_sign`) or
    None when the judge's answer could not be parsed. A pair is consistent when the swapped verdict
    names the same answer (``"A"`` then ``"B"``, or a tie both times). Pairs with an unparsed verdict
    are left out of ``n`` and counted in ``unparsed``.

    >>> position_consistency(["A", "B", "tie", "A"], ["B", "B", "tie", None]).share
    0.666...
    """
    if len(first_order) != len(swapped_order):
        raise ValueError(
            f"each pair needs a verdict in both orders ({len(first_order)} and {len(swapped_order)} given)"
        )
    first = np.array([verdict_sign(v) for v in first_order], dtype=np.float64)
    swapped = np.array([verdict_sign(v) for v in swapped_order], dtype=np.float64)
    parsed = ~(np.isnan(first) | np.isnan(swapped))
    n = int(np.count_nonzero(parsed))
    unparsed = int(first.size - n)
    if n == 0:
        nan = math.nan
        return Consistency(nan, nan, nan, 0, 0, unparsed, "no pair has a parsed verdict in both orders")
    consistent = int(np.count_nonzero(first[parsed] == -swapped[parsed]))
    low, high = wilson_interval(consistent, n, confidence)
    return Consistency(consistent / n, low, high, n, consistent, unparsed)


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation with its two-sided p-value (scipy's ``spearmanr``)."""

    rho: float
    p_value: float
    n: int
    dropped: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def length_bias(verdicts: Sequence[Any] | ArrayLike, length_difference: ArrayLike) -> Correlation:
    """Length bias of a judge: Spearman correlation of its verdict with the answers' length difference.

    Pairwise: ``verdicts[i]`` is ``"A"``/``"B"``/``"tie"`` for the pair shown as (first, second) and
    ``length_difference[i]`` is ``len(first) - len(second)``; a positive ``rho`` means the judge
    prefers the longer answer. Pointwise: pass the scores as ``verdicts`` and the answers' lengths
    as ``length_difference``. Items with a missing verdict or length are left out (``dropped``).
    NaN with a ``reason`` when fewer than 3 items remain or either side is constant.

    >>> length_bias(["A", "B", "A", "tie"], [40, -12, 25, 3]).rho > 0
    True
    """
    from scipy.stats import spearmanr

    raw = list(np.asarray(verdicts, dtype=object))
    x = np.asarray(length_difference, dtype=np.float64)
    if x.ndim != 1 or x.size != len(raw):
        raise ValueError(
            f"one length difference per verdict is needed ({len(raw)} verdicts, {x.size} lengths)"
        )
    y = np.array([verdict_sign(v) if isinstance(v, str) else _number(v) for v in raw], dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    n = int(np.count_nonzero(keep))
    dropped = int(x.size - n)
    nan = math.nan
    if n < 3:
        return Correlation(
            nan, nan, n, dropped, f"{n} items with a verdict and a length: at least 3 are needed"
        )
    x, y = x[keep], y[keep]
    if np.all(y == y[0]):
        return Correlation(nan, nan, n, dropped, "every verdict is the same: no correlation to measure")
    if np.all(x == x[0]):
        return Correlation(
            nan, nan, n, dropped, "every length difference is the same: no correlation to measure"
        )
    result = spearmanr(x, y)
    return Correlation(float(result.statistic), float(result.pvalue), n, dropped)


def _number(value: Any) -> float:
    if _missing(value):
        return math.nan
    return float(value)
