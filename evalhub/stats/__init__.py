"""The statistics under evalhub's comparisons, judges and slices: pure functions over per-item values.

Every function takes per-item values (lists, numpy arrays, polars columns; None/NaN for a missing
value), returns a small frozen dataclass (``as_dict()`` for a table row) and meets a degenerate input
(no items, no discordant pairs, all values equal) with NaN or a defined value and a ``reason``, never a
crash or a made-up number. scipy is imported on first use; the server never imports this package.

>>> from evalhub import stats
>>> c = stats.paired_compare(baseline_scores, candidate_scores)   # aligned by sample key
>>> c.delta, c.low, c.high, c.p_value, c.method                    # 'mcnemar' or 'bootstrap'
>>> stats.holm([c.p_value for c in comparisons])                   # across the runs compared
>>> stats.mean_interval(scores)                                    # Wilson or bootstrap interval
>>> stats.cohen_kappa(judge_labels, human_labels, weights="quadratic").kappa
"""

from __future__ import annotations

from evalhub._extras import needs_extra

# numpy (and scipy on first use) come with the notebook extra
with needs_extra("notebook", "evalhub.stats"):
    from evalhub.stats._agreement import (
        Consistency,
        Correlation,
        Kappa,
        cohen_kappa,
        length_bias,
        position_consistency,
        verdict_sign,
    )
    from evalhub.stats._intervals import (
        SLICE_RESAMPLES,
        Estimate,
        mean_interval,
        slice_estimates,
        wilson_interval,
    )
    from evalhub.stats._multiple import holm
    from evalhub.stats._paired import (
        COMPARE_RESAMPLES,
        PairedComparison,
        mcnemar_exact,
        newcombe_interval,
        paired_compare,
        paired_compare_many,
    )
    from evalhub.stats._values import is_binary

__all__ = [
    "COMPARE_RESAMPLES",
    "SLICE_RESAMPLES",
    "Consistency",
    "Correlation",
    "Estimate",
    "Kappa",
    "PairedComparison",
    "cohen_kappa",
    "holm",
    "is_binary",
    "length_bias",
    "mcnemar_exact",
    "mean_interval",
    "newcombe_interval",
    "paired_compare",
    "paired_compare_many",
    "position_consistency",
    "slice_estimates",
    "verdict_sign",
    "wilson_interval",
]
