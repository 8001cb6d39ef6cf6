"""The paired bootstrap of evalhub.stats against a naive per-resample loop, on the same data and seed.

    python bench/stats_bench.py [--items 100000] [--runs 4] [--resamples 10000]

Three candidate runs against one baseline (``--runs 4``) on ``--items`` continuous per-item scores:
``evalhub.stats.paired_compare_many`` (resamples drawn in blocks, one draw shared by every candidate)
against the loop a user would write (for each candidate, for each resample: draw the items, take both
runs' means). Both give the same intervals (checked and printed). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evalhub import stats


def naive(
    baseline: np.ndarray, candidates: dict[str, np.ndarray], resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    out = {}
    n = baseline.size
    for name, cand in candidates.items():
        rng = np.random.default_rng(seed)
        deltas = np.empty(resamples)
        for r in range(resamples):
            idx = rng.integers(0, n, size=n)
            deltas[r] = cand[idx].mean() - baseline[idx].mean()
        low, high = np.quantile(deltas, [0.025, 0.975])
        out[name] = (float(low), float(high))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=4, help="runs in all, the first one the baseline")
    parser.add_argument("--resamples", type=int, default=stats.COMPARE_RESAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    baseline = rng.random(args.items)
    candidates = {
        f"run-{i}": np.clip(baseline + rng.normal(0.002 * i, 0.1, args.items), 0, 1)
        for i in range(1, args.runs)
    }
    print(f"paired bootstrap: {args.items:,} items x {args.runs} runs, {args.resamples:,} resamples")

    start = time.perf_counter()
    ours = stats.paired_compare_many(baseline, candidates, resamples=args.resamples, seed=args.seed)
    t_ours = time.perf_counter() - start

    start = time.perf_counter()
    theirs = naive(baseline, candidates, args.resamples, args.seed)
    t_naive = time.perf_counter() - start

    print(f"{'':24}{'seconds':>10}")
    print(f"{'evalhub.stats':24}{t_ours:>10.2f}")
    print(f"{'naive loop':24}{t_naive:>10.2f}")
    print(f"speed-up: {t_naive / t_ours:.2f}x")
    for name, result in ours.items():
        low, high = theirs[name]
        print(
            f"{name}: delta {result.delta:+.5f}  evalhub [{result.low:+.5f}, {result.high:+.5f}]  "
            f"naive [{low:+.5f}, {high:+.5f}]  p {result.p_value:.4g}"
        )


if __name__ == "__main__":
    main()
