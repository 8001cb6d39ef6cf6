"""evalhub.stats against the real oracles: scipy, a direct numpy resample, scikit-learn, published examples."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest, spearmanr
from sklearn.metrics import cohen_kappa_score

from evalhub import stats
from evalhub.stats import _bootstrap

# -- helpers: the definitions written out the slow, obvious way ---------------------------------------


def naive_bootstrap(diff: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """One resample at a time, as documented in evalhub.stats._bootstrap."""
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for r in range(resamples):
        out[r] = diff[rng.integers(0, diff.size, size=diff.size)].mean()
    return out


def hand_wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def hand_holm(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def binary_runs(n: int, seed: int, p_base: float = 0.6, p_flip: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < p_base).astype(float)
    flip = rng.random(n) < p_flip
    cand = np.where(flip, 1.0 - base, base)
    return base, cand


# -- McNemar and Newcombe -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_mcnemar_equals_binomtest_on_the_discordant_pairs(seed: int) -> None:
    base, cand = binary_runs(200, seed)
    better = int(np.sum((cand == 1) & (base == 0)))
    worse = int(np.sum((cand == 0) & (base == 1)))
    result = stats.paired_compare(base, cand)
    assert result.method == "mcnemar" and result.interval == "newcombe"
    assert (result.better, result.worse, result.n) == (better, worse, 200)
    assert result.p_value == binomtest(better, better + worse, 0.5).pvalue
    assert result.delta == pytest.approx(cand.mean() - base.mean())
    assert result.low < result.delta < result.high


def test_mcnemar_without_discordant_pairs_is_p_1_with_the_reason() -> None:
    values = [1, 0, 1, 1, 0]
    result = stats.paired_compare(values, values)
    assert result.p_value == 1.0
    assert result.delta == 0.0
    assert result.better == result.worse == 0
    assert "no discordant pairs" in (result.reason or "")
    assert result.low < 0.0 < result.high  # Newcombe's interval is still defined
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_newcombe_matches_the_published_example() -> None:
    # Cavo et al. (2012), complete response before/after consolidation therapy, the worked example of
    # Newcombe's square-and-add interval in Fagerland, Lydersen & Laake, Statistical Analysis of
    # Contingency Tables (2017), ch. 8: estimate -0.0621, 95% CI -0.1186 to -0.0046.
    low, high = stats.newcombe_interval(59, 6, 16, 80)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)
    # the same table as per-item scores: 59 both right, 6 only the candidate, 16 only the baseline, 80 neither
    cand = [1] * 59 + [1] * 6 + [0] * 16 + [0] * 80
    base = [1] * 59 + [0] * 6 + [1] * 16 + [0] * 80
    result = stats.paired_compare(base, cand)
    assert round(result.delta, 4) == -0.0621
    assert (result.low, result.high) == (low, high)


@pytest.mark.parametrize("table", [(36, 12, 2, 0), (10, 3, 7, 30), (5, 0, 0, 5), (0, 4, 1, 0), (20, 2, 9, 1)])
def test_newcombe_equals_a_hand_computation(table: tuple[int, int, int, int]) -> None:
    e, f, g, h = table
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = hand_wilson(e + f, n)
    l2, u2 = hand_wilson(e + g, n)
    margins = (e + f) * (g + h) * (e + g) * (f + h)
    cross = e * h - f * g
    phi = 0.0
    if margins:
        phi = (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else min(cross, 0) / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = d + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    assert stats.newcombe_interval(e, f, g, h) == pytest.approx((low, high), abs=1e-12)


def test_newcombe_of_an_empty_table_is_nan() -> None:
    assert all(math.isnan(x) for x in stats.newcombe_interval(0, 0, 0, 0))


# -- the paired bootstrap ------------------------------------------------------------------------------


def continuous_runs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    return base, base + rng.normal(0.01, 0.2, n)


def test_bootstrap_equals_a_direct_numpy_resample_with_the_same_seed() -> None:
    base, cand = continuous_runs(300, 1)
    result = stats.paired_compare(base, cand, resamples=2000, seed=7)
    direct = naive_bootstrap(cand - base, 2000, 7)
    assert result.method == "bootstrap" and result.interval == "percentile"
    assert (result.resamples, result.seed, result.n) == (2000, 7, 300)
    low, high = np.quantile(direct, [0.025, 0.975])
    assert result.low == pytest.approx(low, abs=1e-13)
    assert result.high == pytest.approx(high, abs=1e-13)
    far = min(np.sum(direct <= 0), np.sum(direct >= 0))
    assert result.p_value == pytest.approx(min(1.0, 2 * (far + 1) / 2001))
    assert result.delta == pytest.approx(np.mean(cand - base))


def test_bootstrap_blocks_continue_one_random_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    diff = np.random.default_rng(3).normal(size=97)
    monkeypatch.setattr(_bootstrap, "_BLOCK_ELEMENTS", 97 * 3 + 5)  # blocks of 3 resamples, a ragged end
    blocked = _bootstrap.resampled_means(diff, 100, 11)
    np.testing.assert_allclose(blocked, naive_bootstrap(diff, 100, 11), rtol=0, atol=1e-14)


def test_default_bootstrap_is_10000_resamples_and_reproducible() -> None:
    base, cand = continuous_runs(50, 2)
    first = stats.paired_compare(base, cand)
    assert first.resamples == stats.COMPARE_RESAMPLES == 10_000
    assert first == stats.paired_compare(base, cand)
    assert first != stats.paired_compare(base, cand, seed=1)


def test_a_clear_difference_is_significant_and_no_difference_is_not() -> None:
    base, _ = continuous_runs(400, 4)
    noise = np.random.default_rng(5).normal(0, 0.05, 400)
    better = stats.paired_compare(base, base + 0.05 + noise)
    assert better.low > 0 and better.p_value < 0.001
    same = stats.paired_compare(base, base + noise - noise.mean())
    assert same.low < 0 < same.high and same.p_value > 0.5


def test_many_candidates_equal_one_at_a_time() -> None:
    base, c1 = continuous_runs(120, 6)
    _, c2 = continuous_runs(120, 7)
    c3 = c2.copy()
    c3[[3, 50]] = np.nan  # other items present: its own resamples
    many = stats.paired_compare_many(base, {"c1": c1, "c2": c2, "c3": c3}, resamples=500, seed=3)
    assert list(many) == ["c1", "c2", "c3"]
    for name, values in {"c1": c1, "c2": c2, "c3": c3}.items():
        assert many[name] == stats.paired_compare(base, values, resamples=500, seed=3)
    assert many["c3"].n == 118 and many["c3"].dropped == 2


def test_many_decides_0_1_once_for_the_metric() -> None:
    base = [1.0, 0.0, 1.0, 0.0]
    many = stats.paired_compare_many(base, {"bin": [1, 1, 1, 0], "soft": [0.5, 1, 1, 0]}, resamples=100)
    assert {c.method for c in many.values()} == {"bootstrap"}


def test_0_1_is_decided_from_the_data_with_an_override() -> None:
    base, cand = binary_runs(60, 8)
    assert stats.paired_compare(base, cand).method == "mcnemar"
    forced = stats.paired_compare(base, cand, binary=False, resamples=300)
    assert forced.method == "bootstrap"
    assert stats.paired_compare([0.5, 1.0], [1.0, 1.0], resamples=10).method == "bootstrap"
    with pytest.raises(ValueError, match="not all 0 or 1"):
        stats.paired_compare([0.5, 1.0], [1.0, 1.0], binary=True)


def test_missing_values_are_dropped_and_counted() -> None:
    result = stats.paired_compare([1, None, 0, 1, float("nan")], [1, 1, 1, None, 0])
    assert (result.n, result.dropped) == (2, 3)
    assert result.method == "mcnemar" and result.delta == 0.5


@pytest.mark.parametrize("binary", [True, False])
def test_no_paired_items_is_nan_with_the_reason(binary: bool) -> None:
    result = stats.paired_compare([], [], binary=binary)
    assert result.n == 0 and result.method == "none"
    assert all(math.isnan(x) for x in (result.delta, result.low, result.high, result.p_value))
    assert result.reason == "no item has a value in both runs"
    assert stats.paired_compare([None], [1.0]).reason == "no item has a value in both runs"


def test_a_single_item_has_no_interval() -> None:
    result = stats.paired_compare([0.2], [0.7])
    assert result.delta == pytest.approx(0.5)
    assert math.isnan(result.low) and math.isnan(result.p_value)
    assert "single" in (result.reason or "")


def test_identical_runs_give_zero_and_p_1() -> None:
    values = [0.1, 0.4, 0.9]
    result = stats.paired_compare(values, values)
    assert (result.delta, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.reason == "the runs agree on every item"
    exact = [0.5, 1.0, 2.0]  # binary fractions, so every difference is exactly 0.25
    shifted = stats.paired_compare(exact, [v + 0.25 for v in exact], resamples=99)
    assert shifted.low == shifted.high == 0.25
    assert "every paired difference equals 0.25" in (shifted.reason or "")


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="one value per shared item"):
        stats.paired_compare([1, 0], [1])
    with pytest.raises(ValueError, match="expected numbers"):
        stats.paired_compare(["a"], ["b"])
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_compare([1], [1], confidence=95)


# -- Holm -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p", [[0.01, 0.04, 0.03, 0.005], [0.2, 0.2, 0.01], [0.5], [0.001, 0.9, 0.04, 0.04, 0.3, 0.012]]
)
def test_holm_equals_the_hand_computation(p: list[float]) -> None:
    np.testing.assert_allclose(stats.holm(p), hand_holm(p), rtol=0, atol=1e-15)


def test_holm_passes_nan_through_and_does_not_count_it() -> None:
    adjusted = stats.holm([0.01, float("nan"), 0.04])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], hand_holm([0.01, 0.04]))
    assert np.isnan(stats.holm([float("nan")] * 2)).all()
    assert stats.holm([]).size == 0


def test_holm_caps_at_1_and_refuses_non_p_values() -> None:
    assert stats.holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        stats.holm([1.5])


# -- intervals of a mean and slices --------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(81, 263), (0, 10), (10, 10), (1, 29), (15, 148)])
def test_wilson_equals_the_formula(k: int, n: int) -> None:
    assert stats.wilson_interval(k, n) == pytest.approx(hand_wilson(k, n), abs=1e-12)


def test_wilson_matches_newcombes_single_proportion_example() -> None:
    # Newcombe (1998), Two-sided confidence intervals for the single proportion, Stat Med 17:857: 81/263
    low, high = stats.wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_mean_interval_wilson_for_0_1_and_bootstrap_otherwise() -> None:
    assert stats.mean_interval([1, 0, 1, 1]).method == "wilson"
    values = np.random.default_rng(9).random(80)
    estimate = stats.mean_interval(values, seed=4)
    assert estimate.method == "bootstrap" and estimate.resamples == 1000
    direct = naive_bootstrap(values, 1000, 4)
    assert (estimate.low, estimate.high) == pytest.approx(
        tuple(np.quantile(direct, [0.025, 0.975])), abs=1e-13
    )
    assert estimate.mean == pytest.approx(values.mean())


def test_mean_interval_degenerate_cases() -> None:
    empty = stats.mean_interval([None, float("nan")])
    assert empty.n == 0 and empty.dropped == 2 and math.isnan(empty.mean) and empty.reason
    flat = stats.mean_interval([0.3, 0.3, 0.3])
    assert (flat.low, flat.high) == (0.3, 0.3) and flat.reason == "every item has the same value"
    one = stats.mean_interval([0.7])
    assert one.reason == "a single item"
    assert stats.mean_interval([0, 0, 0]).high > 0  # Wilson is honest about three zeros


def test_slice_estimates_equal_each_slice_alone() -> None:
    import polars as pl

    rng = np.random.default_rng(10)
    frame = pl.DataFrame({"subject": rng.choice(["alg", "geo", "num"], 300), "score": rng.random(300)})
    estimates = stats.slice_estimates(frame["score"], frame["subject"], resamples=200, seed=2)
    expected = frame.group_by("subject").agg(pl.col("score").mean(), pl.len()).sort("subject")
    assert list(estimates) == expected["subject"].to_list()
    for row in expected.iter_rows(named=True):
        got = estimates[row["subject"]]
        assert got.mean == pytest.approx(row["score"]) and got.n == row["len"]
        alone = frame.filter(pl.col("subject") == row["subject"])["score"]
        assert got == stats.mean_interval(alone, resamples=200, seed=2)


def test_slices_of_a_0_1_metric_all_use_wilson() -> None:
    estimates = stats.slice_estimates([1, 1, 0, 1], ["a", "a", "b", "b"])
    assert {e.method for e in estimates.values()} == {"wilson"}
    with pytest.raises(ValueError, match="differ in length"):
        stats.slice_estimates([1, 0], ["a"])


# -- agreement -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(3))
def test_kappa_equals_scikit_learn(weights: str | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, 150)
    b = np.clip(a + rng.integers(-1, 2, 150), 1, 5)
    result = stats.cohen_kappa(a, b, weights=weights)  # type: ignore[arg-type]
    assert result.kappa == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-12)
    assert result.n == 150


def test_kappa_with_string_labels_and_a_given_scale() -> None:
    a = ["good", "bad", "good", "ok", "ok", "good"]
    b = ["good", "ok", "good", "ok", "bad", "bad"]
    assert stats.cohen_kappa(a, b).kappa == pytest.approx(cohen_kappa_score(a, b))
    a_num, b_num = [1, 2, 2, 5], [1, 2, 5, 5]  # 3 and 4 unused: the scale says how far 2 is from 5
    scale = [1, 2, 3, 4, 5]
    got = stats.cohen_kappa(a_num, b_num, weights="linear", labels=scale).kappa
    assert got == pytest.approx(cohen_kappa_score(a_num, b_num, weights="linear", labels=scale))


def test_kappa_degenerate_cases() -> None:
    same = stats.cohen_kappa(["A", "A"], ["A", "A"])
    assert math.isnan(same.kappa) and "chance agreement is 1" in (same.reason or "")
    empty = stats.cohen_kappa([None, 1], [2, None])
    assert math.isnan(empty.kappa) and empty.n == 0 and empty.dropped == 2
    partial = stats.cohen_kappa([1, 2, None, 2], [1, 2, 3, 1])
    assert partial.n == 3 and partial.kappa == pytest.approx(cohen_kappa_score([1, 2, 2], [1, 2, 1]))
    with pytest.raises(ValueError, match="not in the given labels"):
        stats.cohen_kappa([1, 7], [1, 2], labels=[1, 2])
    with pytest.raises(ValueError, match="different numbers"):
        stats.cohen_kappa([1], [1, 2])


def test_position_consistency_by_counting() -> None:
    first = ["A", "B", "tie", "A", "[[B]]", None, "A"]
    swapped = ["B", "B", "C", "A", "[[A]]", "A", None]
    result = stats.position_consistency(first, swapped)
    # parsed pairs: 0 (A/B ok), 1 (B/B flipped), 2 (tie/tie ok), 3 (A/A flipped), 4 (B/A ok)
    assert (result.n, result.consistent, result.unparsed) == (5, 3, 2)
    assert result.share == pytest.approx(3 / 5)
    assert (result.low, result.high) == pytest.approx(hand_wilson(3, 5))
    none = stats.position_consistency([None], ["A"])
    assert none.n == 0 and math.isnan(none.share) and none.reason
    with pytest.raises(ValueError, match="both orders"):
        stats.position_consistency(["A"], [])
    with pytest.raises(ValueError, match="not a pairwise verdict"):
        stats.position_consistency(["maybe"], ["A"])


def test_length_bias_equals_spearman() -> None:
    rng = np.random.default_rng(12)
    diff = rng.integers(-50, 50, 200)
    verdicts = np.where(diff + rng.normal(0, 40, 200) > 0, "A", "B").tolist()
    verdicts[::17] = ["tie"] * len(verdicts[::17])
    result = stats.length_bias(verdicts, diff)
    signs = [1 if v == "A" else -1 if v == "B" else 0 for v in verdicts]
    expected = spearmanr(diff, signs)
    assert result.rho == pytest.approx(expected.statistic) and result.rho > 0.3
    assert result.p_value == pytest.approx(expected.pvalue)
    scores = rng.integers(1, 11, 200)
    pointwise = stats.length_bias(scores, rng.integers(5, 500, 200))
    assert abs(pointwise.rho) < 0.3 and pointwise.n == 200


def test_length_bias_degenerate_cases() -> None:
    assert "at least 3" in (stats.length_bias(["A", "B"], [1, 2]).reason or "")
    assert "every verdict is the same" in (stats.length_bias(["A"] * 4, [1, 2, 3, 4]).reason or "")
    flat = stats.length_bias(["A", "B", "A"], [5, 5, 5])
    assert math.isnan(flat.rho) and "length difference" in (flat.reason or "")
    dropped = stats.length_bias(["A", None, "B", "A", "B"], [3, 1, -2, 4, float("nan")])
    assert (dropped.n, dropped.dropped) == (3, 2)


def test_stats_imports_no_scipy_until_used() -> None:
    import subprocess
    import sys

    code = "import sys, evalhub.stats; print('scipy' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )
