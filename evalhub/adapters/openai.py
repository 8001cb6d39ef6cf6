"""The ``openai`` runtime: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM's server, evalhub serve-openai).

Params: ``base_url`` (or ``OPENAI_BASE_URL``; e.g. ``http://127.0.0.1:8000/v1``), ``api_key`` (or
``OPENAI_API_KEY``), ``model`` (default: the checkpoint URI when it is ``openai://<name>``, else the
endpoint's first model), ``mode`` (``completions`` | ``chat``), ``batch_size`` (prompts per completions
request, 16), ``max_concurrency`` (requests in flight, 8), ``timeout`` (s, 120), ``max_retries`` (5),
``retry_backoff`` (s, 0.5; doubled each retry).

Log-likelihoods use ``echo`` + ``logprobs`` on ``/completions`` (the endpoint must support them); the
continuation's tokens are those that start at or after the end of the context (its trailing spaces moved
to the continuation, as lm-eval does). Chat mode gives no log-likelihoods.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from evalhub.adapters._text import cut_at_stop
from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams
from evalhub.errors import AdapterError

T = TypeVar("T")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIAdapter(Adapter):
    """Requests to an OpenAI-compatible server, a bounded number at a time, retried with backoff."""

    runtime = "openai"

    def __init__(self) -> None:
        super().__init__()
        self.client: Any = None
        self.base_url = ""
        self.model_name = ""
        self.mode = "completions"
        self.batch_size = 16
        self.max_concurrency = 8
        self.max_retries = 5
        self.retry_backoff = 0.5
        self._local = threading.local()

    def load(self, checkpoint: CheckpointRef) -> None:
        import httpx

        params = dict(checkpoint.params)
        base_url = params.get("base_url") or os.environ.get("OPENAI_BASE_URL")
        if not base_url and checkpoint.uri.startswith(("http://", "https://")):
            base_url = checkpoint.uri
        if not base_url:
            raise AdapterError(
                f"the openai runtime needs params.base_url (e.g. http://127.0.0.1:8000/v1) for "
                f"checkpoint {checkpoint.model}/{checkpoint.name}, or OPENAI_BASE_URL"
            )
        self.base_url = str(base_url).rstrip("/")
        self.mode = str(params.get("mode", "completions"))
        if self.mode not in ("completions", "chat"):
            raise AdapterError(f"openai mode {self.mode!r} is unknown: use completions or chat")
        self.batch_size = max(1, int(params.get("batch_size", 16)))
        self.max_concurrency = max(1, int(params.get("max_concurrency", 8)))
        self.max_retries = max(0, int(params.get("max_retries", 5)))
        self.retry_backoff = float(params.get("retry_backoff", 0.5))
        api_key = params.get("api_key") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=float(params.get("timeout", 120.0)),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )
        model = params.get("model")
        if not model and checkpoint.uri.startswith("openai://"):
            model = checkpoint.uri[len("openai://") :]
        if not model:
            listed = self._request("GET", "/models")
            data = listed.get("data") or []
            if not data:
                raise AdapterError(f"{self.base_url}/models lists no model: set params.model")
            model = data[0]["id"]
        self.model_name = str(model)
        self.checkpoint = checkpoint

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call, retried with exponential backoff (and jitter) on connection errors, 429 and 5xx."""
        import httpx

        if self.client is None:
            raise AdapterError("the openai adapter is not loaded: call load(checkpoint) first")
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                answer = self.client.request(method, path, json=body)
            except httpx.TransportError as exc:
                last = f"cannot reach {self.base_url}{path}: {exc}"
            else:
                if answer.status_code < 400:
                    result: dict[str, Any] = answer.json()
                    return result
                last = f"{self.base_url}{path} answered {answer.status_code}: {_error_text(answer)}"
                if answer.status_code not in RETRY_STATUS:
                    raise AdapterError(last)
            if attempt < self.max_retries:
                time.sleep(self.retry_backoff * (2**attempt) * (0.5 + random.random()))
        raise AdapterError(f"{last} (after {self.max_retries + 1} attempts)")

    def _map(self, fn: Callable[[T], list[Any]], chunks: Sequence[T]) -> list[Any]:
        """``fn`` over chunks, at most ``max_concurrency`` at a time, results concatenated in order."""
        if len(chunks) <= 1 or self.max_concurrency == 1:
            return [item for chunk in chunks for item in fn(chunk)]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks))) as pool:
            return [item for part in pool.map(fn, chunks) for item in part]

    def _chunks(self, n: int, size: int) -> list[range]:
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    # -- generation ------------------------------------------------------------------------------

    def _sampling(self, params: GenerationParams) -> dict[str, Any]:
        greedy = not (params.do_sample and params.temperature > 0)
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if greedy else params.temperature,
        }
        if not greedy:
            body["top_p"] = params.top_p
        if params.seed is not None:
            body["seed"] = params.seed
        if params.until:
            body["stop"] = list(params.until)
        return body

    def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
        base = self._sampling(params)
        if self.mode == "chat":

            def chat(i: range) -> list[Generation]:
                (k,) = i
                body = {**base, "messages": [{"role": "user", "content": prompts[k]}]}
                answer = self._request("POST", "/chat/completions", body)
                text = answer["choices"][0]["message"].get("content") or ""
                usage = answer.get("usage") or {}
                return [
                    Generation(
                        text=cut_at_stop(text, params.until),
                        tokens_in=int(usage.get("prompt_tokens") or 0),
                        tokens_out=int(usage.get("completion_tokens") or 0),
                    )
                ]

            return self._map(chat, self._chunks(len(prompts), 1))

        def complete(i: range) -> list[Generation]:
            batch = [prompts[k] for k in i]
            answer = self._request("POST", "/completions", {**base, "prompt": batch})
            choices = _by_index(answer, len(batch))
            usage = answer.get("usage") or {}
            out = []
            for n, choice in enumerate(choices):
                own = choice.get("evalhub_tokens") or {}
                share_in, share_out = _share(usage, len(batch), n)
                out.append(
                    Generation(
                        text=cut_at_stop(choice.get("text") or "", params.until),
                        tokens_in=int(own.get("prompt", share_in)),
                        tokens_out=int(own.get("completion", share_out)),
                    )
                )
            return out

        return self._map(complete, self._chunks(len(prompts), self.batch_size))

    # -- likelihoods -----------------------------------------------------------------------------

    def _echo(self, texts: list[str]) -> list[dict[str, Any]]:
        """The ``logprobs`` objects of ``texts`` echoed back (one generated token, ignored)."""
        if self.mode == "chat":
            raise AdapterError(
                "the openai runtime in chat mode gives no log-likelihoods: use params.mode=completions "
                "with an endpoint that supports echo and logprobs"
            )

        def score(i: range) -> list[dict[str, Any]]:
            batch = [texts[k] for k in i]
            body = {
                "model": self.model_name,
                "prompt": batch,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
            }
            answer = self._request("POST", "/completions", body)
            result = []
            for choice in _by_index(answer, len(batch)):
                logprobs = choice.get("logprobs")
                if not logprobs or logprobs.get("token_logprobs") is None:
                    raise AdapterError(
                        f"{self.base_url} gave no prompt logprobs: the endpoint must support echo=true "
                        "with logprobs for log-likelihood tasks"
                    )
                result.append(logprobs)
            return result

        return self._map(score, self._chunks(len(texts), self.batch_size))

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        splits = [len(ctx.rstrip()) for ctx, _ in requests]
        answers = self._echo([ctx + cont for ctx, cont in requests])
        results = []
        for (ctx, cont), split, logprobs in zip(requests, splits, answers, strict=True):
            end = len(ctx) + len(cont)
            total, greedy, seen = 0.0, True, 0
            for token, value, top, offset in _tokens(logprobs):
                if offset < split or offset >= end or value is None:
                    continue
                seen += 1
                total += float(value)
                if top:
                    greedy = greedy and max(top, key=lambda k: top[k]) == token
            if seen == 0:
                raise AdapterError(f"{self.base_url} returned no scored tokens for the continuation {cont!r}")
            results.append((total, greedy))
        return results

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        # an OpenAI-compatible echo leaves the first token unscored: it is not counted
        answers = self._echo(texts)
        return [
            sum(float(v) for _, v, _, offset in _tokens(lp) if v is not None and offset < len(text))
            for text, lp in zip(texts, answers, strict=True)
        ]


def _tokens(logprobs: dict[str, Any]) -> list[tuple[str, float | None, dict[str, float] | None, int]]:
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    offsets = logprobs.get("text_offset") or []
    if len(offsets) != len(tokens):
        raise AdapterError("the endpoint's logprobs carry no text_offset for each token")
    return list(zip(tokens, values, tops, offsets, strict=True))


def _by_index(answer: dict[str, Any], n: int) -> list[dict[str, Any]]:
    choices = sorted(answer.get("choices") or [], key=lambda c: int(c.get("index", 0)))
    if len(choices) != n:
        raise AdapterError(f"the endpoint answered {len(choices)} choices for {n} prompts")
    return choices


def _share(usage: dict[str, Any], n: int, k: int) -> tuple[int, int]:
    """The k-th of n even shares of a request's token usage (the first share takes the remainder)."""

    def part(total: int) -> int:
        return total // n + (total % n if k == 0 else 0)

    return part(int(usage.get("prompt_tokens") or 0)), part(int(usage.get("completion_tokens") or 0))


def _error_text(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return str(answer.text)[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(body)[:300]
