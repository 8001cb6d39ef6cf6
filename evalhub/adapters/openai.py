"""The ``openai`` runtime: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM's server, ``transformers serve``,
evalhub serve-openai).

Params: ``base_url`` (or ``OPENAI_BASE_URL``; e.g. ``http://127.0.0.1:8000/v1``), ``api_key_env`` (the
environment variable of the worker that holds the key; default ``OPENAI_API_KEY``: a key itself is never
put in params, which are stored), ``model`` (default: the checkpoint URI when it is ``openai://<name>``, else the
endpoint's first model), ``mode`` (``completions`` | ``chat``: the endpoint a plain prompt goes to),
``max_concurrency`` (requests in flight, 8; also the run's batch size), ``stream`` (False: stream
generations to measure the time to first token), ``timeout`` (s, 120), ``max_retries`` (5),
``retry_backoff`` (s, 0.5; doubled each retry).

Every request carries one prompt (many compatible servers refuse a list) and only standard fields, so
each request's own ``usage`` gives its token counts (``None`` where the server reports none) and its own
round trip its latency. A chat (``config.apply_chat_template``) goes to ``/chat/completions`` as messages.

Log-likelihoods use ``echo`` + ``logprobs`` on ``/completions``: the continuation's tokens are those that
start at or after the end of the context (its trailing spaces moved to the continuation, as lm-eval does).
An endpoint that ignores them (``transformers serve`` does) is refused before the first request is scored;
chats can't be scored at all.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from evalhub._secrets import from_env
from evalhub.adapters._text import cut_at_stop
from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams, Message, Prompt
from evalhub.errors import AdapterError

T = TypeVar("T")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
PROBE_TEXT = "1+1= 2"


class OpenAIAdapter(Adapter):
    """Requests to an OpenAI-compatible server, a bounded number at a time, retried with backoff."""

    runtime = "openai"
    reports_batches = True
    takes_messages = True

    def __init__(self) -> None:
        super().__init__()
        self.client: Any = None
        self.base_url = ""
        self.model_name = ""
        self.mode = "completions"
        self.max_concurrency = 8
        self.max_retries = 5
        self.retry_backoff = 0.5
        self.stream = False
        self._scores_checked = False
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
        self.max_concurrency = max(1, int(params.get("max_concurrency", 8)))
        self.batch_size = self.max_concurrency
        self.max_retries = max(0, int(params.get("max_retries", 5)))
        self.retry_backoff = float(params.get("retry_backoff", 0.5))
        self.stream = bool(params.get("stream", False))
        api_key = from_env(params, "api_key", default_env="OPENAI_API_KEY")
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

    def chat_template(self) -> str | None:
        return None  # the endpoint applies its own: chats go to it as messages

    def set_batch_size(self, size: int) -> None:
        """Kept: the requests in flight are ``params.max_concurrency`` (an endpoint's limits are the model's
        setting, not the run's)."""

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, retries: int | None = None
    ) -> dict[str, Any]:
        """One call, retried with exponential backoff (and jitter) on connection errors, 429 and 5xx."""
        import httpx

        if self.client is None:
            raise AdapterError("the openai adapter is not loaded: call load(checkpoint) first")
        attempts = (self.max_retries if retries is None else retries) + 1
        last = ""
        for attempt in range(attempts):
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
            if attempt < attempts - 1:
                time.sleep(self.retry_backoff * (2**attempt) * (0.5 + random.random()))
        raise AdapterError(f"{last} (after {attempts} attempts)")

    def _stream(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], float | None]:
        """A streamed call: the text, the last ``usage`` seen and the seconds to the first text."""
        import httpx

        if self.client is None:
            raise AdapterError("the openai adapter is not loaded: call load(checkpoint) first")
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        usage: dict[str, Any] = {}
        try:
            with self.client.stream("POST", path, json={**body, "stream": True}) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise AdapterError(
                        f"{self.base_url}{path} answered {answer.status_code}: {_error_text(answer)}"
                    )
                for line in answer.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        raise AdapterError(f"{self.base_url}{path} streamed an error: {chunk['error']}")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = choice.get("text")
                        if text is None:
                            text = (choice.get("delta") or {}).get("content")
                        if text:
                            if first is None:
                                first = time.perf_counter() - start
                            parts.append(text)
        except httpx.TransportError as exc:
            raise AdapterError(f"cannot reach {self.base_url}{path}: {exc}") from exc
        return "".join(parts), usage, first

    def _each(self, items: list[T], fn: Callable[[T], Any]) -> list[Any]:
        """``fn`` over items, at most ``max_concurrency`` in flight; each request's own round trip is its
        latency, and progress is reported (from this thread) as each one is answered."""
        results: list[Any] = [None] * len(items)

        def timed(i: int) -> tuple[int, Any, float]:
            start = time.perf_counter()
            value = fn(items[i])
            return i, value, time.perf_counter() - start

        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(items))))
        try:
            pending: set[Future[tuple[int, Any, float]]] = {pool.submit(timed, i) for i in range(len(items))}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i, value, seconds = future.result()
                    results[i] = value
                    self._batch_done([i], seconds)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results

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

    def _generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        base = self._sampling(params)

        def one(prompt: Prompt) -> Generation:
            if isinstance(prompt, list) or self.mode == "chat":
                messages: list[Message] = (
                    prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
                )
                path, body = "/chat/completions", {**base, "messages": messages}
            else:
                path, body = "/completions", {**base, "prompt": prompt}
            ttft = None
            if self.stream:
                text, usage, first = self._stream(path, body)
                ttft = first * 1000.0 if first is not None else None
            else:
                answer = self._request("POST", path, body)
                choice = _by_index(answer, 1)[0]
                message = choice.get("message") or {}
                text = (choice.get("text") if "message" not in choice else message.get("content")) or ""
                usage = answer.get("usage") or {}
            return Generation(
                text=cut_at_stop(text, params.until),
                tokens_in=_count(usage, "prompt_tokens"),
                tokens_out=_count(usage, "completion_tokens"),
                ttft_ms=ttft,
            )

        return list(self._each(prompts, one))

    # -- likelihoods -----------------------------------------------------------------------------

    def check_loglikelihood(self) -> None:
        """Refuse, before any request is scored, an endpoint that returns no prompt logprobs."""
        if self.mode == "chat":
            raise AdapterError(
                "the openai runtime in chat mode gives no log-likelihoods (chat endpoints score no given "
                "text): use params.mode=completions with an endpoint that supports echo and logprobs"
            )
        if self._scores_checked:
            return
        body = {**self._echo_body(PROBE_TEXT), "max_tokens": 1}
        answer = self._request("POST", "/completions", body, retries=1)
        choices = answer.get("choices") or []
        logprobs = choices[0].get("logprobs") if choices else None
        if (
            not isinstance(logprobs, dict)
            or not logprobs.get("token_logprobs")
            or not logprobs.get("text_offset")
        ):
            raise AdapterError(
                f"{self.base_url}/completions ignores echo=true with logprobs (its answer holds no prompt "
                "logprobs): log-likelihood tasks (multiple_choice, loglikelihood, perplexity) need an "
                "endpoint that returns the prompt's token logprobs; run generation tasks only here, or "
                "serve the model with one that does (vLLM's server, evalhub serve-openai)"
            )
        self._scores_checked = True

    def _echo_body(self, text: str) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }

    def _echo(self, texts: list[str]) -> list[dict[str, Any]]:
        """The ``logprobs`` objects of ``texts`` echoed back (one generated token, ignored)."""
        self.check_loglikelihood()

        def score(text: str) -> dict[str, Any]:
            answer = self._request("POST", "/completions", self._echo_body(text))
            logprobs = _by_index(answer, 1)[0].get("logprobs")
            if not logprobs or logprobs.get("token_logprobs") is None:
                raise AdapterError(
                    f"{self.base_url} gave no prompt logprobs: the endpoint must support echo=true "
                    "with logprobs for log-likelihood tasks"
                )
            result: dict[str, Any] = logprobs
            return result

        return list(self._each(texts, score))

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


def _count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def _error_text(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return str(answer.text)[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if isinstance(body, dict) and "detail" in body:  # FastAPI's own error body
        return str(body["detail"])[:300]
    return str(body)[:300]
