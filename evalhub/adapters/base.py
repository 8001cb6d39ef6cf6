"""The one interface every model adapter keeps: load a checkpoint, generate, score likelihoods.

The lm-eval bridge (``evalhub.engines.lm_eval``) drives adapters through this interface only, so a new
runtime is a new subclass and nothing else. Adapters batch internally: lm-eval hands a model object
every request at once and ignores its own ``batch_size``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class Generation:
    """One generated continuation, cut at the first stop sequence."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass
class CallStats:
    """Timing and token counts gathered around adapter calls, for latency and throughput metrics."""

    latencies_ms: list[float] = field(default_factory=list)  # one entry per request (batch time / size)
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    busy_s: float = 0.0  # wall time spent inside adapter calls

    def add(self, n_requests: int, seconds: float, tokens_in: int, tokens_out: int) -> None:
        self.requests += n_requests
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.busy_s += seconds
        if n_requests:
            self.latencies_ms.extend([seconds * 1000.0 / n_requests] * n_requests)


class Adapter(ABC):
    """A loaded model that answers generation and likelihood requests.

    Subclasses implement ``load`` and the ``_generate``/``_loglikelihood``/``_loglikelihood_rolling``
    hooks; the public methods time each call into ``self.stats`` and check the output counts.
    """

    runtime: str = ""

    def __init__(self) -> None:
        self.stats = CallStats()
        self.checkpoint: CheckpointRef | None = None

    @abstractmethod
    def load(self, checkpoint: CheckpointRef) -> None:
        """Load weights (resolve the URI through ``evalhub.adapters.uris.resolve``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model (GPU memory, HTTP clients)."""

    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        with self._timed(len(prompts)) as out:
            result = self._generate(list(prompts), params)
            out.extend(result)
        _check_count("generate", len(prompts), len(result))
        return result

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """For each (context, continuation): log P(continuation | context) and whether it is greedy."""
        with self._timed(len(requests)):
            result = self._loglikelihood(list(requests))
        _check_count("loglikelihood", len(requests), len(result))
        return result

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[float]:
        """For each text: its total log-likelihood (perplexity tasks)."""
        with self._timed(len(texts)):
            result = self._loglikelihood_rolling(list(texts))
        _check_count("loglikelihood_rolling", len(texts), len(result))
        return result

    @abstractmethod
    def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]: ...

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"the {self.runtime} runtime gives no log-likelihoods")

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        raise NotImplementedError(f"the {self.runtime} runtime gives no rolling log-likelihoods")

    @contextmanager
    def _timed(self, n_requests: int) -> Iterator[list[Generation]]:
        generations: list[Generation] = []
        start = time.perf_counter()
        yield generations
        elapsed = time.perf_counter() - start
        self.stats.add(
            n_requests,
            elapsed,
            sum(g.tokens_in for g in generations),
            sum(g.tokens_out for g in generations),
        )


def _check_count(call: str, expected: int, got: int) -> None:
    from evalhub.errors import AdapterError

    if got != expected:
        raise AdapterError(f"adapter {call} returned {got} outputs for {expected} inputs")
