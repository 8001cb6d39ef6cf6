"""lm-eval's answer as evalhub's results: metrics keyed as :mod:`evalhub.metric_names` says, one Sample per
(subtask, document) with every filter's scores, performance figures, provenance per subtask."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from evalhub.errors import EvalhubError
from evalhub.metric_names import PERF_HIGHER_IS_BETTER, from_lm_eval, metric_key, parse_key

if TYPE_CHECKING:
    from evalhub.adapters.base import Adapter


@dataclass
class EvalResult:
    """What one task (a single task, a group or a tag) on one loaded checkpoint produced.

    ``metrics`` and ``higher_is_better`` are keyed as :mod:`evalhub.metric_names` says; ``samples`` hold
    every subtask's samples (each with its ``task``); ``provenance["subtasks"]`` describes each subtask.
    """

    task: str
    metrics: dict[str, float]
    samples: list[dict[str, Any]]
    perf: dict[str, float]
    provenance: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)  # lm-eval's answer without samples
    higher_is_better: dict[str, bool] = field(default_factory=dict)  # scores and perf figures

    @property
    def all_metrics(self) -> dict[str, float]:
        """Scores and performance figures together (what a run's metrics hold)."""
        return {**self.metrics, **self.perf}


class ChatPrompt(NamedTuple):
    """A chat (JSON-encoded messages) passed through lm-eval untouched to an adapter that takes messages;
    lm-eval hashes and logs prompts as strings, hence ``encode``."""

    prompt: str

    def encode(self, encoding: str = "utf-8") -> bytes:
        return self.prompt.encode(encoding)

    def messages(self) -> list[dict[str, str]]:
        value: list[dict[str, str]] = json.loads(self.prompt)
        return value


@dataclass
class RequestCost:
    """What one request cost: its latency, time to first token and token counts (``None``: unknown)."""

    latency_ms: float
    ttft_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None


def metric_name(key: str) -> str:
    """lm-eval's ``"exact_match,none"`` -> ``exact_match``; another filter is kept: ``acc/strict-match``;
    a stderr names its metric: ``exact_match_stderr,strict-match`` -> ``exact_match/strict-match_stderr``."""
    return from_lm_eval(key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    try:  # numpy scalars
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and not isinstance(value, str) else None


def summary_metrics(task_results: dict[str, Any], subtask: str | None = None) -> dict[str, float]:
    """One task's entry of lm-eval's ``results`` as metric keys (``acc``, ``acc_stderr``, …), under
    ``subtask:`` when it is a part of the evaluated task."""
    out: dict[str, float] = {}
    for key, value in task_results.items():
        if "," not in key:
            continue  # name, alias, sample_len, sample_count
        number = _number(value)
        if number is not None:  # stderr is "N/A" when it cannot be computed
            out[from_lm_eval(key, subtask)] = number
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, ChatPrompt):
        return value.prompt
    return json.dumps(value, default=str, ensure_ascii=False)


DOC_TEXT_MAX = 512
DOC_COLUMNS_MAX = 64


def doc_columns(doc: Any) -> dict[str, Any]:
    """The columns of a task's document a sample keeps to be sliced by (``subject``, ``difficulty``, a
    dataset's fields): its numbers, booleans and short texts (a long text, such as the question itself,
    is in the prompt already); lists and objects are left out."""
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if len(out) >= DOC_COLUMNS_MAX:
            break
        if not isinstance(key, str) or not key or len(key) > 64 or any(c in key for c in '"\\'):
            continue
        if isinstance(value, bool) or (isinstance(value, int) and -(2**63) <= value < 2**63):
            out[key] = value
        elif isinstance(value, float) and math.isfinite(value):
            out[key] = value
        elif isinstance(value, str) and len(value) <= DOC_TEXT_MAX:
            out[key] = value
    return out


def convert_sample(
    raws: Sequence[dict[str, Any]],
    output_type: str,
    primary: str | None,
    costs: Sequence[RequestCost] | None,
    task: str,
) -> dict[str, Any]:
    """One document's logged samples (one per filter) as one evalhub Sample (see docs/rest-api.md).

    The document's short columns go into ``extra.doc`` (what slicing reads). Scores are keyed ``<metric>`` or ``<metric>/<filter>``; the first filter gives ``filtered_output``,
    every filter's output is in ``extra.filtered_outputs``.
    """
    raw = raws[0]
    args = raw.get("arguments") or []
    prompt = _text(args[0][0]) if args and args[0] else ""
    target = raw.get("target")
    reference = _text(target)
    resps = raw.get("resps") or []
    extra: dict[str, Any] = {"doc_id": raw.get("doc_id"), "filter": raw.get("filter")}
    doc = doc_columns(raw.get("doc"))
    if doc:
        extra["doc"] = doc
    outputs: dict[str, str] = {}
    if output_type == "multiple_choice":
        choices = [_text(a[1]).strip() for a in args]
        lls = [
            float(r[0]) if isinstance(r, list | tuple) else float(r) for r in raw.get("filtered_resps") or []
        ]
        best = max(range(len(lls)), key=lambda i: lls[i]) if lls else None
        output = choices[best] if best is not None else ""
        outputs = {str(r.get("filter")): output for r in raws}
        if isinstance(target, int) and 0 <= target < len(choices):
            reference = choices[target]
        extra.update(choices=choices, loglikelihoods=lls)
    elif output_type == "generate_until":
        output = _text(resps[0][0]) if resps and resps[0] else ""
        for r in raws:
            filtered = r.get("filtered_resps") or []
            outputs[str(r.get("filter"))] = _text(filtered[0]) if filtered else output
    else:  # loglikelihood(_rolling): the score is the output
        output = _text(resps[0][0] if resps and resps[0] else None)
        for r in raws:
            filtered = r.get("filtered_resps") or []
            outputs[str(r.get("filter"))] = _text(filtered[0] if filtered else None)
    scores: dict[str, float] = {}
    for r in raws:
        for name in r.get("metrics") or []:
            number = _number(r.get(name))
            if number is not None:
                scores[metric_key(name, r.get("filter"))] = number
    first_filter = str(raw.get("filter"))
    if len(outputs) > 1:
        extra["filtered_outputs"] = outputs
    sample: dict[str, Any] = {
        "sample_key": str(raw.get("doc_hash")),
        "task": task,
        "index": int(raw.get("doc_id") or 0),
        "prompt": prompt,
        "reference": reference,
        "output": output,
        "filtered_output": outputs.get(first_filter, output),
        "scores": scores,
        "extra": extra,
    }
    first_key = metric_key(primary, raw.get("filter")) if primary is not None else None
    if first_key is not None and first_key in scores:
        sample["primary_score"] = scores[first_key]
    elif scores:
        sample["primary_score"] = next(iter(scores.values()))
    if costs:
        # the doc's requests (a choice each, for multiple choice) ran side by side: the slowest one's time
        sample["latency_ms"] = max(c.latency_ms for c in costs)
        if all(c.tokens_in is not None and c.tokens_out is not None for c in costs):
            sample["tokens_in"] = sum(int(c.tokens_in or 0) for c in costs)
            sample["tokens_out"] = sum(int(c.tokens_out or 0) for c in costs)
    return sample


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class PeakMemory:
    """The resident memory of this process sampled while a run evaluates (its lifetime peak can't be
    reset), and the GPU's peak of the run (``torch.cuda.reset_peak_memory_stats`` at its start)."""

    def __init__(self, adapter: Adapter, every_s: float = 0.05) -> None:
        self.adapter = adapter
        self.every_s = every_s
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while True:
            self.peak_rss = max(self.peak_rss, process.memory_info().rss)
            if self._stop.wait(self.every_s):
                break
        self.peak_rss = max(self.peak_rss, process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        reset = getattr(self.adapter, "reset_peak_memory", None)
        if callable(reset):
            reset()
        self._thread = threading.Thread(target=self._sample, name="evalhub-peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def figures(self) -> dict[str, float]:
        out = {"peak_rss_mb": self.peak_rss / 2**20}
        peak = getattr(self.adapter, "peak_memory_mb", None)
        value = peak() if callable(peak) else None
        if isinstance(value, int | float):
            out["peak_gpu_mem_mb"] = float(value)
        return out


def build_result(
    name: str,
    local: bool,
    answer: dict[str, Any],
    lm: Any,
    adapter: Adapter,
    memory: PeakMemory,
    wall: float,
    manager: Any,
    run: dict[str, Any],
) -> EvalResult:
    results: dict[str, dict[str, Any]] = answer.get("results") or {}
    configs: dict[str, dict[str, Any]] = answer.get("configs") or {}
    group_subtasks: dict[str, list[str]] = answer.get("group_subtasks") or {}
    leaves = [t for t in configs]  # every leaf task that ran, in lm-eval's order
    if not leaves and name not in results:
        raise EvalhubError(f"lm-eval returned no results for task {name!r} (got {sorted(results)})")
    single = leaves == [name]
    kind = "task" if single else ("group" if name in group_subtasks else "tag")

    # metrics: the evaluated task's own unprefixed, every part of it under its name
    metrics: dict[str, float] = {}
    higher: dict[str, bool] = {}
    hib_all: dict[str, dict[str, bool]] = answer.get("higher_is_better") or {}
    for part, entry in results.items():
        prefix = None if part == name else part
        values = summary_metrics(entry, prefix)
        metrics.update(values)
        part_hib = _part_higher_is_better(part, hib_all, group_subtasks)
        for key in values:
            parsed = parse_key(key)
            if not parsed.is_stderr and parsed.metric in part_hib:
                higher[key] = part_hib[parsed.metric]
    for key, better in PERF_HIGHER_IS_BETTER.items():
        higher.setdefault(key, better)

    # samples: one per (subtask, doc), every filter's scores on it
    samples: list[dict[str, Any]] = []
    for leaf in leaves:
        cfg = configs.get(leaf, {})
        output_type = str(cfg.get("output_type") or "")
        metric_list = cfg.get("metric_list") or []
        primary = metric_list[0].get("metric") if metric_list and isinstance(metric_list[0], dict) else None
        by_doc: dict[Any, list[dict[str, Any]]] = {}
        for raw in (answer.get("samples") or {}).get(leaf, []):
            by_doc.setdefault(raw.get("doc_id"), []).append(raw)
        converted = [
            convert_sample(
                raws, output_type, str(primary) if primary else None, lm.per_doc.get((leaf, doc)), leaf
            )
            for doc, raws in by_doc.items()
        ]
        # identical docs share lm-eval's doc_hash; keep each one (the n-th repeat gets "#n", stable across runs)
        seen: dict[str, int] = {}
        for sample in sorted(converted, key=lambda s: s["index"]):
            key = sample["sample_key"]
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                sample["sample_key"] = f"{key}#{seen[key]}"
            if not single:
                sample["sample_key"] = f"{leaf}/{sample['sample_key']}"
        samples.extend(converted)

    perf = _perf(adapter, len(samples), wall, memory)
    provenance = _provenance(name, kind, local, answer, leaves, manager, adapter, run)
    stripped = {k: v for k, v in answer.items() if k != "samples"}
    return EvalResult(name, metrics, samples, perf, provenance, stripped, higher)


def _part_higher_is_better(
    part: str, hib_all: dict[str, dict[str, bool]], group_subtasks: dict[str, list[str]]
) -> dict[str, bool]:
    """lm-eval's ``higher_is_better`` of a task or group; a group lm-eval leaves out gets its members'
    (where they agree)."""
    if hib_all.get(part):
        return {str(k): bool(v) for k, v in hib_all[part].items() if v is not None}
    merged: dict[str, bool] = {}
    clash: set[str] = set()
    for member in group_subtasks.get(part, []):
        for metric, better in _part_higher_is_better(member, hib_all, group_subtasks).items():
            if metric in merged and merged[metric] != better:
                clash.add(metric)
            merged[metric] = better
    return {k: v for k, v in merged.items() if k not in clash}


def _perf(adapter: Adapter, n_samples: int, wall: float, memory: PeakMemory) -> dict[str, float]:
    stats = adapter.stats
    perf: dict[str, float] = {
        "latency_p50_ms": _percentile(stats.latencies_ms, 0.5),
        "latency_p95_ms": _percentile(stats.latencies_ms, 0.95),
        "latency_p99_ms": _percentile(stats.latencies_ms, 0.99),
        "samples_per_s": n_samples / stats.busy_s if stats.busy_s > 0 else 0.0,
        "requests_per_s": stats.requests / stats.busy_s if stats.busy_s > 0 else 0.0,
        "eval_wall_s": wall,
    }
    if stats.ttft_ms:
        perf["ttft_p50_ms"] = _percentile(stats.ttft_ms, 0.5)
        perf["ttft_p95_ms"] = _percentile(stats.ttft_ms, 0.95)
        perf["ttft_p99_ms"] = _percentile(stats.ttft_ms, 0.99)
    if stats.tokens_complete and stats.generate_s > 0:  # generated tokens over the time spent generating
        perf["tokens_per_s"] = stats.tokens_out / stats.generate_s
    perf.update(memory.figures())
    return perf


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _aggregation(manager: Any, group: str) -> list[dict[str, Any]]:
    """A group's ``aggregate_metric_list`` with lm-eval's defaults filled in (mean, not weighted)."""
    entry = (getattr(manager, "task_index", None) or {}).get(group)
    cfg = getattr(entry, "cfg", None) or {}
    out = []
    for item in cfg.get("aggregate_metric_list") or []:
        if isinstance(item, dict) and item.get("metric"):
            out.append(
                {
                    "metric": str(item["metric"]),
                    "aggregation": str(item.get("aggregation") or "mean"),
                    "weight_by_size": bool(item.get("weight_by_size", False)),
                    "filter_list": item.get("filter_list") or ["none"],
                }
            )
    return out


def _describe(aggregation: list[dict[str, Any]]) -> str:
    if not aggregation:
        return "none (lm-eval reports no score of its own for it)"
    parts = []
    for item in aggregation:
        how = item["aggregation"] + (
            " weighted by subtask size" if item["weight_by_size"] else " of subtasks"
        )
        parts.append(f"{item['metric']}: {how}")
    return "; ".join(parts)


def _provenance(
    name: str,
    kind: str,
    local: bool,
    answer: dict[str, Any],
    leaves: list[str],
    manager: Any,
    adapter: Adapter,
    run: dict[str, Any],
) -> dict[str, Any]:
    configs: dict[str, dict[str, Any]] = answer.get("configs") or {}
    versions = answer.get("versions") or {}
    n_shot = answer.get("n-shot") or {}
    n_samples = answer.get("n-samples") or {}
    subtasks = {}
    for leaf in leaves:
        cfg = configs.get(leaf, {})
        subtasks[leaf] = {
            "output_type": cfg.get("output_type"),
            "num_fewshot": n_shot.get(leaf),
            "version": versions.get(leaf),
            "task_hash": _digest(cfg),
            "dataset": {"path": cfg.get("dataset_path"), "name": cfg.get("dataset_name")},
            "metrics": [m.get("metric") for m in cfg.get("metric_list") or [] if isinstance(m, dict)],
            "filters": [f.get("name") for f in cfg.get("filter_list") or [] if isinstance(f, dict)]
            or ["none"],
            "n_samples": n_samples.get(leaf),
            "generation": cfg.get("generation_kwargs"),
        }
    groups = {}
    for group, members in (answer.get("group_subtasks") or {}).items():
        aggregation = _aggregation(manager, group)
        groups[group] = {
            "subtasks": list(members),
            "version": versions.get(group),
            "aggregation": aggregation,
            "aggregation_text": _describe(aggregation),
        }

    def common(key: str) -> Any:
        values = {json.dumps(s[key], sort_keys=True, default=str) for s in subtasks.values()}
        return next(iter(subtasks.values()))[key] if len(values) == 1 and subtasks else None

    chat = run["chat"]
    template = adapter.chat_template() if chat == "render" else None
    seed = run["seed"]
    return {
        "engine": "lm_eval",
        "lm_eval_version": run["lm_eval_version"] or _dist_version("lm_eval"),
        "task": name,
        "kind": kind,
        "task_version": versions.get(name) if name in versions else common("version"),
        "task_hash": subtasks[name]["task_hash"] if kind == "task" else _digest([configs, groups]),
        "local_task": local,
        "include_path": run["include_path"],
        "output_type": common("output_type") if kind != "task" else subtasks[name]["output_type"],
        "num_fewshot": n_shot.get(name) if name in n_shot else common("num_fewshot"),
        "fewshot_as_multiturn": run["fewshot_as_multiturn"],
        "apply_chat_template": run["apply_chat_template"],
        "system_instruction": run["system_instruction"],
        "chat": (
            {
                "via": chat,
                "template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
            }
            if chat
            else None
        ),
        "batch_size": adapter.batch_size,
        "runtime": adapter.runtime,
        "limit": run["limit"],
        "seeds": {"random": seed, "numpy": seed, "torch": seed, "fewshot": seed},
        "generation": common("generation"),
        "n_samples": n_samples.get(name) if name in n_samples else None,
        "subtasks": subtasks,
        "groups": groups,
        "request_cache": run.get("request_cache"),
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return None
