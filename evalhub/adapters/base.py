"""The one interface every model adapter keeps: load a checkpoint, generate, score likelihoods.

The lm-eval bridge (``evalhub.engines.lm_eval``) drives adapters through this interface only, so a new
runtime is a new subclass and nothing else. lm-eval hands a model object every request at once; the
adapter's ``batch_size`` is the one batch size of a run (the bridge does not cut requests itself).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CheckpointRef:
    """What a worker needs to load weights: where they are and how the model is run."""

    model: str
    name: str
    uri: str
    runtime: str
    adapter: str | None = None  # "module:Class" for the python runtime
    code_uri: str | None = None  # a repo path that holds the adapter's code
    params: dict[str, Any] = field(default_factory=dict)  # the model's default_params + overrides
    step: int | None = None


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one generate call (lm-eval's ``generation_kwargs``, normalised)."""

    max_new_tokens: int = 32
    until: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    do_sample: bool = False
    seed: int | None = None

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], default_max: int = 32) -> GenerationParams:
        until = kwargs.get("until") or ()
        if isinstance(until, str):
            until = (until,)
        temperature = float(kwargs.get("temperature", 0.0) or 0.0)
        return cls(
            max_new_tokens=int(kwargs.get("max_gen_toks", kwargs.get("max_new_tokens", default_max))),
            until=tuple(until),
            temperature=temperature,
            top_p=float(kwargs.get("top_p", 1.0)),
            do_sample=bool(kwargs.get("do_sample", temperature > 0)),
            seed=kwargs.get("seed"),
        )


Message = dict[str, str]
"""One turn of a chat: ``{"role": "system" | "user" | "assistant", "content": ...}``."""

Prompt = str | list[Message]
"""What ``generate`` takes: a text, or a chat (a list of messages) for an adapter with ``takes_messages``."""

DEFAULT_BATCH_SIZE = 16


@dataclass
class Generation:
    """One generated continuation, cut at the first stop sequence.

    Token counts are ``None`` when the runtime doesn't report them for this request (never estimated).
    ``latency_ms`` runs from the start of the batch the request was in until its own sequence finished;
    ``ttft_ms`` until its first token, where the runtime shows tokens as they come.
    """

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None


@dataclass
class CallStats:
    """Timing and token counts of the requests answered, for latency and throughput metrics."""

    latencies_ms: list[float] = field(default_factory=list)  # one per request, measured per request
    ttft_ms: list[float] = field(default_factory=list)  # one per generation whose runtime shows it
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    generations: int = 0
    counted_generations: int = 0  # generations whose runtime reported their token counts
    busy_s: float = 0.0  # wall time spent inside adapter calls
    generate_s: float = 0.0  # of which in generate calls

    @property
    def tokens_complete(self) -> bool:
        """Whether every generation reported its token counts (a token rate is honest only then)."""
        return self.generations > 0 and self.counted_generations == self.generations


class Adapter(ABC):
    """A loaded model that answers generation and likelihood requests.

    Subclasses implement ``load`` and the ``_generate``/``_loglikelihood``/``_loglikelihood_rolling``
    hooks. The public methods hand the hooks ``batch_size`` requests at a time, time each request, check
    the output counts and call ``on_batch(n)`` after every ``n`` requests answered (it may raise to stop).
    An adapter that batches by itself (sorting requests by length, as lm-eval does) sets
    ``reports_batches``: its hooks get every request at once and call ``self._batch_done(indices,
    seconds)`` after each of its batches, with the wall time of the pass that answered them.
    """

    runtime: str = ""
    reports_batches: bool = False
    takes_messages: bool = False  # generate() accepts chats (lists of messages) as prompts

    def __init__(self) -> None:
        self.stats = CallStats()
        self.checkpoint: CheckpointRef | None = None
        self.batch_size = DEFAULT_BATCH_SIZE
        self.last_latencies_ms: list[float] = []  # per request of the last call, in request order
        self._on_batch: Callable[[int], None] | None = None
        self._measured: list[float | None] = []

    @abstractmethod
    def load(self, checkpoint: CheckpointRef) -> None:
        """Load weights (resolve the URI through ``evalhub.adapters.uris.resolve``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model (GPU memory, HTTP clients)."""

    def set_batch_size(self, size: int) -> None:
        """Take the run's batch size (``config.batch_size``); a runtime that schedules its own batches
        (vllm) or keeps requests in flight (openai) keeps its own setting."""
        self.batch_size = max(1, int(size))

    # -- chats -----------------------------------------------------------------------------------

    def chat_template(self) -> str | None:
        """The chat template this adapter renders chats with (``None``: it has none)."""
        return None

    def apply_chat_template(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        """A chat rendered as one prompt by the model's chat template."""
        from evalhub.errors import AdapterError

        raise AdapterError(
            f"the {self.runtime or 'model'} adapter renders no chat template; "
            "set config.apply_chat_template: false"
        )

    def check_loglikelihood(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~evalhub.errors.AdapterError` naming what is missing when this adapter can't
        score log-likelihoods (called once before a likelihood task sends its requests)."""

    # -- requests --------------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: GenerationParams,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[Generation]:
        items = list(prompts)
        out, latencies, seconds = self._run(
            "generate", items, lambda part: self._generate(part, params), on_batch
        )
        for gen, ms in zip(out, latencies, strict=True):
            if gen.latency_ms is None:
                gen.latency_ms = ms
        self._latencies([float(g.latency_ms or 0.0) for g in out])
        self.stats.generate_s += seconds
        self.stats.generations += len(out)
        for gen in out:
            if gen.tokens_in is not None and gen.tokens_out is not None:
                self.stats.counted_generations += 1
                self.stats.tokens_in += gen.tokens_in
                self.stats.tokens_out += gen.tokens_out
            if gen.ttft_ms is not None:
                self.stats.ttft_ms.append(gen.ttft_ms)
        return out

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], on_batch: Callable[[int], None] | None = None
    ) -> list[tuple[float, bool]]:
        """For each (context, continuation): log P(continuation | context) and whether it is greedy."""
        out, latencies, _ = self._run("loglikelihood", list(requests), self._loglikelihood, on_batch)
        self._latencies(latencies)
        return out

    def loglikelihood_rolling(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> list[float]:
        """For each text: its total log-likelihood (perplexity tasks)."""
        out, latencies, _ = self._run(
            "loglikelihood_rolling", list(texts), self._loglikelihood_rolling, on_batch
        )
        self._latencies(latencies)
        return out

    @abstractmethod
    def _generate(self, prompts: list[Any], params: GenerationParams) -> list[Generation]: ...

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"the {self.runtime} runtime gives no log-likelihoods")

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        raise NotImplementedError(f"the {self.runtime} runtime gives no rolling log-likelihoods")

    def _batch_done(self, indices: Sequence[int], seconds: float | None = None) -> None:
        """Called by a ``reports_batches`` hook after each batch: these requests (indices into the call's
        list) are answered; ``seconds`` is the wall time of the pass that answered them (added up when a
        request takes several passes)."""
        if seconds is not None:
            self._add_latency(indices, seconds)
        if self._on_batch is not None and indices:
            self._on_batch(len(indices))

    def _add_latency(self, indices: Sequence[int], seconds: float) -> None:
        """Add a pass's wall time to the latency of each of these requests (indices into the call's list)."""
        for i in indices:
            if i >= len(self._measured):  # called outside a request call (e.g. prompt_logprobs)
                continue
            prior = self._measured[i]
            self._measured[i] = seconds * 1000.0 + (prior or 0.0)

    def _run(
        self,
        call: str,
        items: list[Any],
        hook: Callable[[list[Any]], list[T]],
        on_batch: Callable[[int], None] | None,
    ) -> tuple[list[T], list[float], float]:
        """``hook`` over ``items`` in chunks (one chunk when the hook batches itself); the outputs, each
        request's latency (measured by the hook, else its chunk's wall time) and the total seconds."""
        size = len(items) if self.reports_batches else max(1, int(self.batch_size))
        chunks = [range(i, min(i + size, len(items))) for i in range(0, len(items), size)]
        out: list[T] = []
        latencies: list[float] = []
        total = 0.0
        try:
            for chunk in chunks:
                self._measured = [None] * len(chunk)
                self._on_batch = on_batch if self.reports_batches else None
                start = time.perf_counter()
                part = hook([items[i] for i in chunk])
                elapsed = time.perf_counter() - start
                _check_count(call, len(chunk), len(part))
                out.extend(part)
                latencies.extend(ms if ms is not None else elapsed * 1000.0 for ms in self._measured)
                total += elapsed
                self.stats.requests += len(chunk)
                self.stats.busy_s += elapsed
                if on_batch is not None and not self.reports_batches:
                    on_batch(len(chunk))
        finally:
            self._on_batch = None
        return out, latencies, total

    def _latencies(self, latencies: list[float]) -> None:
        self.stats.latencies_ms.extend(latencies)
        self.last_latencies_ms = latencies


def _check_count(call: str, expected: int, got: int) -> None:
    from evalhub.errors import AdapterError

    if got != expected:
        raise AdapterError(f"adapter {call} returned {got} outputs for {expected} inputs")
