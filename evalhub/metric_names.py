"""How a run's metrics are named, and which way each one is better: the one definition evalhub keeps.

A metric key reads ``[<subtask>:]<metric>[/<filter>][_stderr]``:

- ``<metric>`` is lm-eval's metric name (``acc``, ``exact_match``, ``bleu``, …) or one of evalhub's own
  performance figures (``latency_p50_ms``, ``samples_per_s``, …; see :data:`PERF_HIGHER_IS_BETTER`);
- ``/<filter>`` names lm-eval's filter when it is not ``none`` (gsm8k's ``exact_match/strict-match``);
- ``<subtask>:`` names the subtask or subgroup of a group or tag the value belongs to
  (``mmlu_abstract_algebra:acc``, ``mmlu_stem:acc``); the evaluated task's own value (a group's
  aggregate, or a single task's score) has no prefix;
- ``_stderr`` makes it the standard error of the metric the rest of the key names
  (``acc_stderr``, ``exact_match/strict-match_stderr``, ``mmlu_stem:acc_stderr``).

>>> metric_key("exact_match", filter="strict-match", stderr=True)
'exact_match/strict-match_stderr'
>>> parse_key("mmlu_stem:acc_stderr")
MetricKey(subtask='mmlu_stem', metric='acc', filter=None, is_stderr=True)
>>> from_lm_eval("exact_match_stderr,strict-match")
'exact_match/strict-match_stderr'

``higher_is_better(key, known)`` says which way a key is better: evalhub's own figures are defined here,
lm-eval's metrics come with their task configs' ``higher_is_better`` (passed as ``known``, keyed like the
metrics, as ``EvalResult.higher_is_better`` holds them); a stderr is neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

STDERR = "_stderr"
NO_FILTER = "none"

PERF_HIGHER_IS_BETTER: dict[str, bool] = {
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "latency_p99_ms": False,
    "ttft_p50_ms": False,
    "ttft_p95_ms": False,
    "ttft_p99_ms": False,
    "samples_per_s": True,
    "requests_per_s": True,
    "tokens_per_s": True,
    "eval_wall_s": False,
    "peak_rss_mb": False,
    "peak_gpu_mem_mb": False,
}
"""evalhub's own performance figures of a run and which way each is better."""


class MetricKey(NamedTuple):
    """A metric key taken apart (see the module docstring)."""

    subtask: str | None
    metric: str
    filter: str | None
    is_stderr: bool


def metric_key(
    metric: str, filter: str | None = None, subtask: str | None = None, stderr: bool = False
) -> str:
    """The key of ``metric`` (under lm-eval's ``filter``, of ``subtask``, or its stderr)."""
    key = metric if filter in (None, "", NO_FILTER) else f"{metric}/{filter}"
    if subtask:
        key = f"{subtask}:{key}"
    return key + STDERR if stderr else key


def parse_key(key: str) -> MetricKey:
    """``key`` taken apart into (subtask, metric, filter, is_stderr); the inverse of :func:`metric_key`."""
    is_stderr = key.endswith(STDERR)
    rest = key[: -len(STDERR)] if is_stderr else key
    subtask, sep, rest = rest.partition(":")
    if not sep:
        subtask, rest = "", subtask
    metric, _, filt = rest.rpartition("/") if "/" in rest else (rest, "", "")
    return MetricKey(subtask or None, metric, filt or None, is_stderr)


def stderr_key(key: str) -> str:
    """The key of the standard error of the metric ``key`` names."""
    return key + STDERR


def from_lm_eval(key: str, subtask: str | None = None) -> str:
    """lm-eval's ``"<metric>,<filter>"`` result key (``"acc_stderr,none"``) as an evalhub metric key."""
    metric, _, filt = key.partition(",")
    stderr = metric.endswith(STDERR)
    if stderr:
        metric = metric[: -len(STDERR)]
    return metric_key(metric, filt or None, subtask, stderr)


def higher_is_better(key: str, known: Mapping[str, bool] | None = None) -> bool | None:
    """Whether a larger value of ``key`` is better: evalhub's own figures from here, others from ``known``
    (lm-eval's ``higher_is_better``, keyed like the metrics); ``None`` for a stderr or an unknown key."""
    if known is not None and key in known:
        return known[key]
    parsed = parse_key(key)
    if parsed.is_stderr:
        return None
    if parsed.subtask is None and parsed.filter is None and parsed.metric in PERF_HIGHER_IS_BETTER:
        return PERF_HIGHER_IS_BETTER[parsed.metric]
    return None


__all__ = [
    "PERF_HIGHER_IS_BETTER",
    "MetricKey",
    "from_lm_eval",
    "higher_is_better",
    "metric_key",
    "parse_key",
    "stderr_key",
]
