"""The lm-evaluation-harness bridge: an ``lm_eval`` model object over any evalhub :class:`Adapter`.

>>> result = evaluate(adapter, hub.task("arith-add"), limit=50, seed=1234, batch_size=16)
>>> result.metrics
{'exact_match': 0.42, 'exact_match_stderr': 0.07}

A local task's ``engine_config`` (see docs/rest-api.md) is written as a task YAML into a work folder that
a ``TaskManager`` reads (lm-eval's own task index is not scanned then: it takes tens of seconds); a task
lm-eval knows by name (``{"task": "gsm8k"}``) uses lm-eval's own config. lm-eval hands the model object
every request at once and ignores ``batch_size`` for it, so the bridge cuts requests into batches, which
is also where progress is reported and where a cancel stops the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.errors import AdapterError, EvalhubError

if TYPE_CHECKING:
    from evalhub.adapters.base import Adapter

ProgressFn = Callable[[int, int], None]
"""``on_progress(done, total)``, called after each batch of requests; it may raise to stop the run."""


class EvalCancelled(EvalhubError):
    """Raised (by a progress callback) to stop an evaluation between two batches."""


@dataclass
class EvalResult:
    """What one task on one loaded checkpoint produced."""

    task: str
    metrics: dict[str, float]
    samples: list[dict[str, Any]]
    perf: dict[str, float]
    provenance: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)  # lm-eval's answer without samples

    @property
    def all_metrics(self) -> dict[str, float]:
        """Scores and performance figures together (what a run's metrics hold)."""
        return {**self.metrics, **self.perf}


def _lm_base() -> type:
    from lm_eval.api.model import LM

    base: type = LM
    return base


def make_lm(adapter: Adapter, batch_size: int = 16, on_progress: ProgressFn | None = None) -> Any:
    """An ``lm_eval.api.model.LM`` that answers through ``adapter`` in batches of ``batch_size``."""
    return _adapter_lm_class()(adapter, batch_size=batch_size, on_progress=on_progress)


_LM_CLASS: type | None = None


def _adapter_lm_class() -> type:
    # built on first use so importing this module never imports lm_eval (or torch)
    global _LM_CLASS
    if _LM_CLASS is None:
        _LM_CLASS = _define_lm(_lm_base())
    return _LM_CLASS


def _define_lm(base: type) -> type:
    from evalhub.adapters.base import GenerationParams

    class AdapterLM(base):  # type: ignore[misc]
        """lm-eval's view of an evalhub adapter."""

        def __init__(self, adapter: Adapter, batch_size: int, on_progress: ProgressFn | None) -> None:
            super().__init__()
            self.adapter = adapter
            self.batch_size = max(1, int(batch_size))
            self.on_progress = on_progress
            self.done = 0
            self.total = 0
            # per request (task name, doc id): latency and token counts, for the samples
            self.per_doc: dict[tuple[str | None, int | None], dict[str, float]] = {}

        # lm-eval calls each request type once with every request of that type
        def _start(self, n: int) -> None:
            self.total += n
            self._report()

        def _report(self) -> None:
            if self.on_progress is not None:
                self.on_progress(self.done, self.total)

        def _account(self, batch: Sequence[Any], seconds: float, gens: Sequence[Any] | None) -> None:
            share = seconds * 1000.0 / max(1, len(batch))
            for i, req in enumerate(batch):
                key = (req.task_name, req.doc_id)
                entry = self.per_doc.setdefault(key, {"latency_ms": 0.0, "tokens_in": 0, "tokens_out": 0})
                entry["latency_ms"] += share
                if gens is not None:
                    entry["tokens_in"] += gens[i].tokens_in
                    entry["tokens_out"] += gens[i].tokens_out
            self.done += len(batch)
            self._report()

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            self._start(len(requests))
            out: list[str | None] = [None] * len(requests)
            # batch requests that share their generation settings, in request order
            groups: dict[str, list[int]] = {}
            for i, req in enumerate(requests):
                groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(i)
            for indices in groups.values():
                kwargs = dict(requests[indices[0]].args[1])
                params = GenerationParams.from_kwargs(kwargs, default_max=256)
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    prompts = [requests[i].args[0] for i in chunk]
                    t0 = time.perf_counter()
                    gens = self.adapter.generate(prompts, params)
                    self._account([requests[i] for i in chunk], time.perf_counter() - t0, gens)
                    for i, gen in zip(chunk, gens, strict=True):
                        text = gen.text
                        for stop in params.until:  # adapters cut at stops; make sure of it
                            if stop and stop in text:
                                text = text.split(stop, 1)[0]
                        out[i] = text
            return [o if o is not None else "" for o in out]

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            self._start(len(requests))
            out: list[tuple[float, bool]] = []
            for start in range(0, len(requests), self.batch_size):
                chunk = requests[start : start + self.batch_size]
                t0 = time.perf_counter()
                scores = self.adapter.loglikelihood([(r.args[0], r.args[1]) for r in chunk])
                self._account(chunk, time.perf_counter() - t0, None)
                out.extend((float(lp), bool(greedy)) for lp, greedy in scores)
            return out

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            self._start(len(requests))
            out: list[float] = []
            for start in range(0, len(requests), self.batch_size):
                chunk = requests[start : start + self.batch_size]
                t0 = time.perf_counter()
                scores = self.adapter.loglikelihood_rolling([r.args[0] for r in chunk])
                self._account(chunk, time.perf_counter() - t0, None)
                out.extend(float(s) for s in scores)
            return out

        @property
        def tokenizer_name(self) -> str:
            ref = self.adapter.checkpoint
            return f"{ref.model}-{ref.name}" if ref is not None else type(self.adapter).__name__

        def apply_chat_template(
            self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
        ) -> str:
            template = getattr(self.adapter, "apply_chat_template", None)
            if template is None:
                raise AdapterError(
                    f"the {self.adapter.runtime or 'model'} adapter has no chat template; "
                    "set config.apply_chat_template: false"
                )
            return str(template(chat_history, add_generation_prompt=add_generation_prompt))

        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return "adapter" if getattr(self.adapter, "apply_chat_template", None) else None

    return AdapterLM


# -- task configs -----------------------------------------------------------------------------------


def task_config(task: dict[str, Any]) -> dict[str, Any]:
    """The lm-eval config of a registered task row (its ``engine_config``), checked for the essentials."""
    engine = task.get("engine") or "lm_eval"
    if engine != "lm_eval":
        raise EvalhubError(
            f"task {task.get('name')!r} uses engine {engine!r}; this bridge runs lm_eval tasks"
        )
    config = dict(task.get("engine_config") or {})
    if not config.get("task"):
        raise EvalhubError(f"task {task.get('name')!r} has no engine_config.task; register it again")
    return config


def is_local(config: dict[str, Any]) -> bool:
    """A local task carries its own config (a dataset and templates); a bare name is lm-eval's task."""
    return set(config) - {"task"} != set()


def write_task_yaml(config: dict[str, Any], workdir: Path) -> Path:
    """Write a local task's config as an lm-eval task YAML file under ``workdir`` (its own folder)."""
    import yaml

    config = {k: v for k, v in config.items() if v is not None}
    for key, value in (config.get("dataset_kwargs") or {}).get("data_files", {}).items():
        paths = value if isinstance(value, list) else [value]
        for p in paths:
            if not str(p).startswith(("http://", "https://", "hf://")) and not Path(str(p)).exists():
                raise EvalhubError(
                    f"task {config['task']!r}: data file {p} ({key} split) is missing on this worker; "
                    "the task's data must be reachable from every worker"
                )
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = workdir / f"task-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


_DEFAULT_MANAGER: Any = None


def _task_manager(config: dict[str, Any], workdir: Path) -> Any:
    from lm_eval.tasks import TaskManager

    global _DEFAULT_MANAGER
    if is_local(config):
        path = write_task_yaml(config, workdir)
        return TaskManager(include_path=str(path.parent), include_defaults=False)
    if _DEFAULT_MANAGER is None:  # indexing lm-eval's own tasks is slow: once per process
        _DEFAULT_MANAGER = TaskManager()
    return _DEFAULT_MANAGER


# -- results ------------------------------------------------------------------------------------------


def metric_name(key: str) -> str:
    """lm-eval's ``"exact_match,none"`` -> ``exact_match``; another filter is kept: ``acc/strict-match``."""
    metric, _, filt = key.partition(",")
    return metric if filt in ("", "none") else f"{metric}/{filt}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def summary_metrics(task_results: dict[str, Any]) -> dict[str, float]:
    """One task's entry of lm-eval's ``results`` as ``{metric: value, metric_stderr: value}``."""
    out: dict[str, float] = {}
    for key, value in task_results.items():
        if "," not in key:
            continue  # name, alias, sample_len
        number = _number(value)
        if number is not None:  # stderr is "N/A" when it cannot be computed
            out[metric_name(key)] = number
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def convert_sample(
    raw: dict[str, Any], output_type: str, primary: str | None, per_doc: dict[str, float] | None
) -> dict[str, Any]:
    """One of lm-eval's logged samples as an evalhub Sample (see docs/rest-api.md)."""
    args = raw.get("arguments") or []
    prompt = _text(args[0][0]) if args and args[0] else ""
    target = raw.get("target")
    reference = _text(target)
    resps = raw.get("resps") or []
    filtered = raw.get("filtered_resps") or []
    extra: dict[str, Any] = {"doc_id": raw.get("doc_id"), "filter": raw.get("filter")}
    if output_type == "multiple_choice":
        choices = [_text(a[1]).strip() for a in args]
        lls = [float(r[0]) if isinstance(r, list | tuple) else float(r) for r in filtered]
        best = max(range(len(lls)), key=lambda i: lls[i]) if lls else None
        output = choices[best] if best is not None else ""
        filtered_output = output
        if isinstance(target, int) and 0 <= target < len(choices):
            reference = choices[target]
        extra.update(choices=choices, loglikelihoods=lls)
    elif output_type == "generate_until":
        output = _text(resps[0][0]) if resps and resps[0] else ""
        filtered_output = _text(filtered[0]) if filtered else output
    else:  # loglikelihood(_rolling): the score is the output
        output = _text(resps[0][0] if resps and resps[0] else None)
        filtered_output = _text(filtered[0] if filtered else None)
    scores = {}
    for name in raw.get("metrics") or []:
        number = _number(raw.get(name))
        if number is not None:
            scores[name] = number
    sample: dict[str, Any] = {
        "sample_key": str(raw.get("doc_hash")),
        "index": int(raw.get("doc_id") or 0),
        "prompt": prompt,
        "reference": reference,
        "output": output,
        "filtered_output": filtered_output,
        "scores": scores,
        "extra": extra,
    }
    if primary is not None and primary in scores:
        sample["primary_score"] = scores[primary]
    elif scores:
        sample["primary_score"] = next(iter(scores.values()))
    if per_doc:
        sample["latency_ms"] = per_doc["latency_ms"]
        if per_doc["tokens_in"] or per_doc["tokens_out"]:
            sample["tokens_in"] = int(per_doc["tokens_in"])
            sample["tokens_out"] = int(per_doc["tokens_out"])
    return sample


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _peak_memory() -> dict[str, float]:
    out: dict[str, float] = {}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_rss_mb"] = rss_kb / (2**20 if sys.platform == "darwin" else 2**10)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# -- the entry point --------------------------------------------------------------------------------


def evaluate(
    adapter: Adapter,
    task: dict[str, Any],
    *,
    limit: int | float | None = None,
    seed: int = 1234,
    batch_size: int = 16,
    generation: dict[str, Any] | None = None,
    num_fewshot: int | None = None,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = False,
    on_progress: ProgressFn | None = None,
    workdir: str | Path | None = None,
) -> EvalResult:
    """Score a loaded adapter on one registered task with lm-eval's ``simple_evaluate``.

    ``task`` is the task's registry row (``name``, ``engine_config``, ``metrics``). ``generation``
    overrides the task's generation settings (lm-eval ``generation_kwargs`` names: ``max_gen_toks``,
    ``until``, ``temperature``, ``do_sample``). ``on_progress(done, total)`` runs after each batch of
    requests and may raise :class:`EvalCancelled` to stop.
    """
    import lm_eval
    from lm_eval import simple_evaluate

    config = task_config(task)
    name = str(config["task"])
    local = is_local(config)
    if local and num_fewshot is not None:
        config["num_fewshot"] = num_fewshot  # lm-eval ignores the argument when a config says 0
    if local and generation and config.get("output_type") == "generate_until":
        config["generation_kwargs"] = {**(config.get("generation_kwargs") or {}), **generation}
    own_workdir = None
    if workdir is None:
        own_workdir = tempfile.TemporaryDirectory(prefix="evalhub-tasks-")
        workdir = own_workdir.name
    from evalhub.adapters.base import CallStats

    adapter.stats = CallStats()
    lm = make_lm(adapter, batch_size=batch_size, on_progress=on_progress)
    started = time.perf_counter()
    try:
        manager = _task_manager(config, Path(workdir))
        answer = simple_evaluate(
            model=lm,
            tasks=[name],
            num_fewshot=None if local else num_fewshot,
            batch_size=batch_size,
            limit=limit,
            log_samples=True,
            gen_kwargs=None if local else (generation or None),
            task_manager=manager,
            apply_chat_template=apply_chat_template,
            fewshot_as_multiturn=fewshot_as_multiturn,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            bootstrap_iters=1000,
        )
    except Exception as exc:
        if type(exc).__name__ == "UndefinedError":  # jinja2 (StrictUndefined): a template names no column
            raise EvalhubError(
                f"task {name!r}: a template names a column the data does not have ({exc}); "
                "check the task's prompt/target templates against the data file"
            ) from exc
        raise
    finally:
        if own_workdir is not None:
            own_workdir.cleanup()
    wall = time.perf_counter() - started
    if answer is None:
        raise EvalhubError(f"lm-eval returned no results for task {name!r}")
    task_results = (answer.get("results") or {}).get(name)
    if task_results is None:
        raise EvalhubError(f"lm-eval returned no results for task {name!r} (got {sorted(answer['results'])})")
    metrics = summary_metrics(task_results)
    task_cfg = (answer.get("configs") or {}).get(name, {})
    output_type = str(task_cfg.get("output_type") or config.get("output_type") or "")
    metric_list = task_cfg.get("metric_list") or config.get("metric_list") or []
    primary = metric_list[0]["metric"] if metric_list and isinstance(metric_list[0], dict) else None
    raw_samples = (answer.get("samples") or {}).get(name, [])
    # with several filters lm-eval logs a doc once per filter: keep the first filter's
    first_filter = raw_samples[0].get("filter") if raw_samples else None
    samples = [
        convert_sample(s, output_type, primary, lm.per_doc.get((name, s.get("doc_id"))))
        for s in raw_samples
        if s.get("filter") == first_filter
    ]
    # identical docs share lm-eval's doc_hash; keep each one (the n-th repeat gets "#n", stable across runs)
    seen: dict[str, int] = {}
    for sample in sorted(samples, key=lambda s: s["index"]):
        key = sample["sample_key"]
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            sample["sample_key"] = f"{key}#{seen[key]}"
    stats = adapter.stats
    n_docs = len(samples)
    perf: dict[str, float] = {
        "latency_p50_ms": _percentile(stats.latencies_ms, 0.5),
        "latency_p95_ms": _percentile(stats.latencies_ms, 0.95),
        "samples_per_s": n_docs / stats.busy_s if stats.busy_s > 0 else 0.0,
        "requests_per_s": stats.requests / stats.busy_s if stats.busy_s > 0 else 0.0,
        "eval_wall_s": wall,
    }
    if stats.tokens_out and stats.busy_s > 0:
        perf["tokens_per_s"] = stats.tokens_out / stats.busy_s
    perf.update(_peak_memory())
    version = (answer.get("versions") or {}).get(name)
    provenance = {
        "engine": "lm_eval",
        "lm_eval_version": getattr(lm_eval, "__version__", None) or _dist_version("lm_eval"),
        "task": name,
        "task_version": version,
        "task_hash": hashlib.sha256(json.dumps(task_cfg, sort_keys=True, default=str).encode()).hexdigest(),
        "local_task": local,
        "output_type": output_type,
        "num_fewshot": (answer.get("n-shot") or {}).get(name),
        "fewshot_as_multiturn": fewshot_as_multiturn,
        "apply_chat_template": apply_chat_template,
        "batch_size": batch_size,
        "limit": limit,
        "seeds": {"random": seed, "numpy": seed, "torch": seed, "fewshot": seed},
        "generation": task_cfg.get("generation_kwargs"),
        "n_samples": (answer.get("n-samples") or {}).get(name),
    }
    results = {k: v for k, v in answer.items() if k not in ("samples",)}
    return EvalResult(name, metrics, samples, perf, provenance, results)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return None


__all__ = [
    "EvalCancelled",
    "EvalResult",
    "evaluate",
    "make_lm",
    "metric_name",
    "summary_metrics",
    "task_config",
    "write_task_yaml",
]
