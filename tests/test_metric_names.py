"""The one naming scheme of a run's metric keys, and which way each one is better."""

from __future__ import annotations

import pytest

from evalhub.metric_names import (
    PERF_HIGHER_IS_BETTER,
    MetricKey,
    from_lm_eval,
    higher_is_better,
    metric_key,
    parse_key,
    stderr_key,
)


@pytest.mark.parametrize(
    ("lm_eval_key", "subtask", "key"),
    [
        ("acc,none", None, "acc"),
        ("acc_stderr,none", None, "acc_stderr"),
        ("exact_match,strict-match", None, "exact_match/strict-match"),
        ("exact_match_stderr,strict-match", None, "exact_match/strict-match_stderr"),
        ("acc,none", "mmlu_stem", "mmlu_stem:acc"),
        ("acc_stderr,none", "mmlu_abstract_algebra", "mmlu_abstract_algebra:acc_stderr"),
        ("exact_match_stderr,flexible-extract", "gsm8k", "gsm8k:exact_match/flexible-extract_stderr"),
    ],
)
def test_lm_eval_keys_become_metric_keys_and_parse_back(
    lm_eval_key: str, subtask: str | None, key: str
) -> None:
    assert from_lm_eval(lm_eval_key, subtask) == key
    metric, _, filt = lm_eval_key.partition(",")
    stderr = metric.endswith("_stderr")
    expected = MetricKey(subtask, metric.removesuffix("_stderr"), None if filt == "none" else filt, stderr)
    assert parse_key(key) == expected
    assert metric_key(expected.metric, expected.filter, expected.subtask, expected.is_stderr) == key


def test_a_stderr_key_is_its_metrics_key_with_a_suffix() -> None:
    # the comparison pairs a metric with f"{key}_stderr": a filtered metric's stderr pairs the same way
    for key in ("acc", "exact_match/strict-match", "mmlu_stem:acc"):
        assert stderr_key(key) == key + "_stderr"
        assert parse_key(stderr_key(key)).is_stderr and not parse_key(key).is_stderr


def test_evalhubs_own_figures_say_which_way_is_better() -> None:
    assert higher_is_better("latency_p95_ms") is False
    assert higher_is_better("peak_rss_mb") is False
    assert higher_is_better("samples_per_s") is True and higher_is_better("tokens_per_s") is True
    assert set(PERF_HIGHER_IS_BETTER) >= {
        "latency_p50_ms",
        "latency_p99_ms",
        "ttft_p50_ms",
        "peak_gpu_mem_mb",
    }


def test_lm_eval_metrics_take_their_direction_from_what_lm_eval_says() -> None:
    known = {"word_perplexity": False, "mmlu_stem:acc": True}
    assert higher_is_better("word_perplexity", known) is False
    assert higher_is_better("mmlu_stem:acc", known) is True
    assert higher_is_better("acc") is None  # not known: no guess from the name
    assert higher_is_better("acc_stderr", {"acc": True}) is None  # a stderr is neither
