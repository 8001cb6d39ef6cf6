"""The lm-evaluation-harness bridge: an ``lm_eval`` model object over any evalhub :class:`Adapter`.

>>> result = evaluate(adapter, hub.task("arith-add"), limit=50, seed=1234, batch_size=16)
>>> result.metrics
{'exact_match': 0.42, 'exact_match_stderr': 0.07}

A local task's ``engine_config`` (see docs/rest-api.md) is written as a task YAML into a work folder that a
``TaskManager`` reads. A name lm-eval knows (``{"task": "mmlu"}``: a task, a group or a tag, optionally
with the ``include_path`` of a user's own task folder) is loaded by a task manager over the folders that
define it (found in evalhub's cached copy of lm-eval's index, :mod:`evalhub.lm_eval_tasks`), so a worker
doesn't walk lm-eval's 15,000 YAML files for every task.

lm-eval hands the model object every request of a kind at once; the adapter batches them with its own
``batch_size`` (the run's one batch size) and reports each batch, which is where progress is reported and
where a cancel stops the run. Results of groups and tags keep every subtask: metric keys follow
:mod:`evalhub.metric_names` (``mmlu_stem:acc``, ``exact_match/strict-match_stderr``), every sample carries
its subtask's name (``task``) and a key unique in the run (``<subtask>/<doc_hash>`` under a group or tag).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.engines._cache import RequestCache, chunk_size
from evalhub.engines._results import (
    ChatPrompt,
    EvalResult,
    PeakMemory,
    RequestCost,
    build_result,
    convert_sample,
    metric_name,
    summary_metrics,
)
from evalhub.engines._taskfiles import datasets_named, is_local, task_config, task_manager, write_task_yaml
from evalhub.errors import AdapterError, EvalhubError

if TYPE_CHECKING:
    from evalhub.adapters.base import Adapter

ProgressFn = Callable[[int, int], None]
"""``on_progress(done, total)``, called after each batch of requests; it may raise to stop the run."""


class EvalCancelled(EvalhubError):
    """Raised (by a progress callback) to stop an evaluation between two batches."""


def _lm_base() -> type:
    from lm_eval.api.model import LM

    base: type = LM
    return base


def make_lm(
    adapter: Adapter,
    on_progress: ProgressFn | None = None,
    chat: str | None = None,
    cache: RequestCache | None = None,
) -> Any:
    """An ``lm_eval.api.model.LM`` that answers through ``adapter`` (batched by the adapter).

    ``chat`` is how chats reach the adapter: ``"render"`` (its chat template makes a prompt of them),
    ``"messages"`` (it takes them as messages) or ``None`` (no chat template asked). With a ``cache``,
    requests it has answers for never reach the adapter, and the others' answers are stored as they
    come (see :mod:`evalhub.engines._cache`).
    """
    return _adapter_lm_class()(adapter, on_progress=on_progress, chat=chat, cache=cache)


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

        def __init__(
            self,
            adapter: Adapter,
            on_progress: ProgressFn | None,
            chat: str | None,
            cache: RequestCache | None = None,
        ) -> None:
            super().__init__()
            self.adapter = adapter
            self.cache = cache
            if cache is not None:
                cache.prefix = f"{cache.prefix}\0chat={chat}"
            self.batch_size = adapter.batch_size
            self.on_progress = on_progress
            self.chat = chat
            self.done = 0
            self.total = 0
            # per doc (task name, doc id): what each of its requests cost, for the samples
            self.per_doc: dict[tuple[str | None, int | None], list[RequestCost]] = {}

        # lm-eval calls each request type once with every request of that type
        def _start(self, n: int) -> None:
            self.total += n
            self._report()

        def _report(self) -> None:
            if self.on_progress is not None:
                self.on_progress(self.done, self.total)

        def _advance(self, n: int) -> None:
            self.done += n
            self._report()

        def _record(self, req: Any, cost: RequestCost) -> None:
            self.per_doc.setdefault((req.task_name, req.doc_id), []).append(cost)

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            self._start(len(requests))
            out: list[str | None] = [None] * len(requests)
            # requests that share their generation settings go to the adapter together, in request order
            groups: dict[str, list[int]] = {}
            for i, req in enumerate(requests):
                groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(i)
            for indices in groups.values():
                kwargs = dict(requests[indices[0]].args[1])
                params = GenerationParams.from_kwargs(kwargs, default_max=256)
                todo = indices
                keys: dict[int, str] = {}
                if self.cache is not None:
                    settings = json.loads(json.dumps(kwargs, sort_keys=True, default=str))
                    keys = {
                        i: self.cache.key("generate", [_payload(requests[i].args[0]), settings])
                        for i in indices
                    }
                    known = self.cache.answers(list(keys.values()))
                    todo = [i for i in indices if keys[i] not in known]
                    for i in indices:
                        if keys[i] in known:
                            hit = known[keys[i]]
                            out[i] = str(hit["text"])
                            self._record(requests[i], RequestCost(float(hit.get("latency_ms") or 0.0),
                                                                  hit.get("ttft_ms"), hit.get("tokens_in"),
                                                                  hit.get("tokens_out")))  # fmt: skip
                    if len(todo) < len(indices):
                        self._advance(len(indices) - len(todo))
                for part in self._parts(todo):
                    prompts = [_prompt_of(requests[i].args[0]) for i in part]
                    gens = self.adapter.generate(prompts, params, on_batch=self._advance)
                    answers: dict[str, Any] = {}
                    for i, gen in zip(part, gens, strict=True):
                        text = gen.text
                        for stop in params.until:  # adapters cut at stops; make sure of it
                            if stop and stop in text:
                                text = text.split(stop, 1)[0]
                        out[i] = text
                        latency = gen.latency_ms if gen.latency_ms is not None else 0.0
                        self._record(
                            requests[i], RequestCost(latency, gen.ttft_ms, gen.tokens_in, gen.tokens_out)
                        )
                        if keys:
                            answers[keys[i]] = {"text": text, "latency_ms": latency, "ttft_ms": gen.ttft_ms,
                                                "tokens_in": gen.tokens_in, "tokens_out": gen.tokens_out}  # fmt: skip
                    if self.cache is not None:
                        self.cache.put(answers)
            return [o if o is not None else "" for o in out]

        def _parts(self, indices: list[int]) -> list[list[int]]:
            """The requests to send, in one call (no cache), or in chunks whose answers are stored
            before the next chunk starts (with a cache)."""
            if not indices:
                return []
            if self.cache is None:
                return [indices]
            size = chunk_size(self.adapter.batch_size)
            return [indices[i : i + size] for i in range(0, len(indices), size)]

        def _scored(
            self, kind: str, payloads: list[Any], call: Callable[[list[int]], list[Any]]
        ) -> tuple[list[Any], list[float]]:
            """Likelihood answers and per-request latencies for ``payloads``: from the cache where it
            has them, else from ``call(indices)`` (the adapter), stored as they come."""
            n = len(payloads)
            out: list[Any] = [None] * n
            latencies: list[float] = [0.0] * n
            todo = list(range(n))
            keys: list[str] = []
            if self.cache is not None:
                keys = [self.cache.key(kind, p) for p in payloads]
                known = self.cache.answers(keys)
                todo = [i for i in range(n) if keys[i] not in known]
                for i in range(n):
                    if keys[i] in known:
                        hit = known[keys[i]]
                        out[i], latencies[i] = hit["value"], float(hit.get("latency_ms") or 0.0)
                if len(todo) < n:
                    self._advance(n - len(todo))
            for part in self._parts(todo):
                values = call(part)
                answers: dict[str, Any] = {}
                for i, value, ms in zip(part, values, self.adapter.last_latencies_ms, strict=True):
                    out[i], latencies[i] = value, ms
                    if keys:
                        answers[keys[i]] = {"value": value, "latency_ms": ms}
                if self.cache is not None:
                    self.cache.put(answers)
            return out, latencies

        def _check_scorable(self, requests: list[Any]) -> None:
            if any(isinstance(r.args[0], ChatPrompt) for r in requests):
                raise AdapterError(
                    f"the {self.adapter.runtime} runtime takes chats as messages and a chat endpoint scores "
                    "no given text: a likelihood task (multiple_choice, loglikelihood) can't run with "
                    "config.apply_chat_template on it; run it without a chat template"
                )
            self.adapter.check_loglikelihood()

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            self._check_scorable(requests)
            self._start(len(requests))
            pairs = [(str(r.args[0]), str(r.args[1])) for r in requests]
            if self.cache is None:
                scores = self.adapter.loglikelihood(pairs, on_batch=self._advance)
                latencies = list(self.adapter.last_latencies_ms)
            else:
                scores, latencies = self._scored(
                    "loglikelihood",
                    [list(p) for p in pairs],
                    lambda part: [
                        [float(lp), bool(g)]
                        for lp, g in self.adapter.loglikelihood(
                            [pairs[i] for i in part], on_batch=self._advance
                        )
                    ],
                )
            for req, ms in zip(requests, latencies, strict=True):
                self._record(req, RequestCost(ms))
            return [(float(lp), bool(greedy)) for lp, greedy in scores]

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            self._check_scorable(requests)
            self._start(len(requests))
            texts = [str(r.args[0]) for r in requests]
            if self.cache is None:
                scores = self.adapter.loglikelihood_rolling(texts, on_batch=self._advance)
                latencies = list(self.adapter.last_latencies_ms)
            else:
                scores, latencies = self._scored(
                    "loglikelihood_rolling",
                    texts,
                    lambda part: [
                        float(v)
                        for v in self.adapter.loglikelihood_rolling(
                            [texts[i] for i in part], on_batch=self._advance
                        )
                    ],
                )
            for req, ms in zip(requests, latencies, strict=True):
                self._record(req, RequestCost(ms))
            return [float(s) for s in scores]

        @property
        def tokenizer_name(self) -> str:
            ref = self.adapter.checkpoint
            return f"{ref.model}-{ref.name}" if ref is not None else type(self.adapter).__name__

        def apply_chat_template(
            self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
        ) -> str | ChatPrompt:
            if self.chat == "messages":
                return ChatPrompt(json.dumps(chat_history, ensure_ascii=False))
            return self.adapter.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

        def chat_template(self, chat_template: bool | str = False) -> str | None:
            if not chat_template:
                return None
            return self.adapter.chat_template() or ""

    return AdapterLM


def _prompt_of(arg: Any) -> Any:
    return arg.messages() if isinstance(arg, ChatPrompt) else arg


def _payload(arg: Any) -> Any:
    """A generation request's prompt as the cache keys it (a chat by its messages)."""
    return {"chat": arg.messages()} if isinstance(arg, ChatPrompt) else str(arg)


def chat_mode(adapter: Adapter) -> str:
    """How a chat reaches ``adapter``: rendered by its own chat template, or as messages; refused if neither."""
    if adapter.chat_template():
        return "render"
    if adapter.takes_messages:
        return "messages"
    ref = adapter.checkpoint
    name = f" of {ref.model}/{ref.name}" if ref is not None else ""
    if adapter.runtime in ("hf", "vllm"):
        reason = f"the tokenizer{name} has no chat template"
    else:
        reason = f"the {adapter.runtime or 'model'} adapter{name} takes no chats"
    raise AdapterError(f"config.apply_chat_template asks for a chat template, but {reason}; set it to false")


# -- the entry point --------------------------------------------------------------------------------


def options_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`evaluate` that a run's ``config`` (the spec's, per run) sets.

    The worker hands a run's config through here, so an engine option is added in this module only.
    """
    batch_size = config.get("batch_size")
    return {
        "limit": config.get("limit"),
        "seed": int(config.get("seed", 1234)),
        "batch_size": int(batch_size) if batch_size is not None else None,
        "generation": config.get("generation") or None,
        "num_fewshot": config.get("num_fewshot"),
        "apply_chat_template": bool(config.get("apply_chat_template", False)),
        "fewshot_as_multiturn": bool(config.get("fewshot_as_multiturn", False)),
        "system_instruction": config.get("system_instruction") or None,
        "include_path": config.get("include_path") or None,
    }


def _environment_once() -> None:
    """lm-eval's ``simple_evaluate`` ends every call by describing the environment (``add_env_info``:
    torch's ``collect_env``, which runs ``pip list`` and a handful of other subprocesses, ~0.4 s a call
    here). A worker evaluates many runs in one process whose environment does not change between
    them: describe it once per process and give every run a copy of the same description."""
    import copy

    import lm_eval.evaluator as evaluator

    original = evaluator.add_env_info
    if getattr(original, "evalhub_once", False):
        return
    described: dict[str, Any] = {}

    def add_env_info(storage: dict[str, Any]) -> None:
        if not described:
            original(described)
        storage.update(copy.deepcopy(described))

    add_env_info.evalhub_once = True  # type: ignore[attr-defined]
    evaluator.add_env_info = add_env_info


def evaluate(
    adapter: Adapter,
    task: dict[str, Any],
    *,
    limit: int | float | None = None,
    seed: int = 1234,
    batch_size: int | None = None,
    generation: dict[str, Any] | None = None,
    num_fewshot: int | None = None,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = False,
    system_instruction: str | None = None,
    include_path: str | None = None,
    on_progress: ProgressFn | None = None,
    workdir: str | Path | None = None,
    cache: RequestCache | None = None,
) -> EvalResult:
    """Score a loaded adapter on one registered task (a task, a group or a tag) with lm-eval.

    ``task`` is the task's registry row (``name``, ``engine_config``, ``metrics``). ``batch_size`` is given
    to the adapter (``set_batch_size``: hf and python take it, vllm and openai keep their own); the
    adapter's is the run's one batch size, recorded in provenance. ``generation`` overrides the task's
    generation settings (lm-eval ``generation_kwargs`` names: ``max_gen_toks``, ``until``,
    ``temperature``, ``do_sample``). ``apply_chat_template`` renders prompts as chats (with
    ``system_instruction`` and ``fewshot_as_multiturn``) through the adapter. ``include_path`` is a folder
    of lm-eval task YAMLs added to the task's own. ``on_progress(done, total)`` runs after each batch of
    requests and may raise :class:`EvalCancelled` to stop. ``cache`` (a
    :class:`~evalhub.engines._cache.RequestCache`) answers the requests it has and keeps the others'
    answers as they come; provenance says how many it answered (``request_cache``).
    """
    import lm_eval
    from lm_eval import simple_evaluate

    from evalhub.adapters.base import CallStats

    _environment_once()
    config = task_config(task)
    name = str(config["task"])
    local = is_local(config)
    if local and num_fewshot is not None:
        config["num_fewshot"] = num_fewshot  # lm-eval ignores the argument when a config says 0
    if local and generation and config.get("output_type") == "generate_until":
        config["generation_kwargs"] = {**(config.get("generation_kwargs") or {}), **generation}
    folder = config.get("include_path") or include_path
    if config.get("include_path") and include_path and str(include_path) != str(config["include_path"]):
        folder = str(config["include_path"])  # the task's own folder; the run's names no other
    if batch_size is not None:
        adapter.set_batch_size(batch_size)
    chat = chat_mode(adapter) if apply_chat_template else None
    own_workdir = None
    if workdir is None:
        own_workdir = tempfile.TemporaryDirectory(prefix="evalhub-tasks-")
        workdir = own_workdir.name
    adapter.stats = CallStats()
    lm = make_lm(adapter, on_progress=on_progress, chat=chat, cache=cache)
    started = time.perf_counter()
    memory = PeakMemory(adapter)
    try:
        manager = task_manager(config, Path(workdir), folder)
        with memory, datasets_named(name):
            answer = simple_evaluate(
                model=lm,
                tasks=[name],
                num_fewshot=None if local else num_fewshot,
                batch_size=adapter.batch_size,
                limit=limit,
                log_samples=True,
                gen_kwargs=None if local else (generation or None),
                task_manager=manager,
                system_instruction=system_instruction,
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
    run = {
        "seed": seed,
        "limit": limit,
        "apply_chat_template": apply_chat_template,
        "fewshot_as_multiturn": fewshot_as_multiturn,
        "system_instruction": system_instruction,
        "include_path": folder,
        "chat": chat,
        "lm_eval_version": getattr(lm_eval, "__version__", None),
        "request_cache": (
            None if cache is None else {"hits": cache.counts.hits, "misses": cache.counts.misses}
        ),
    }
    return build_result(name, local, answer, lm, adapter, memory, wall, manager, run)


__all__ = [
    "ChatPrompt",
    "EvalCancelled",
    "EvalResult",
    "RequestCost",
    "chat_mode",
    "convert_sample",
    "evaluate",
    "is_local",
    "make_lm",
    "metric_name",
    "options_from_config",
    "summary_metrics",
    "task_config",
    "write_task_yaml",
]
