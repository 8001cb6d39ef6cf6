"""A small OpenAI-compatible server over any evalhub ``Adapter`` (FastAPI + uvicorn).

Routes: ``GET /v1/models``, ``POST /v1/completions`` (``prompt`` a string or a list, ``max_tokens``,
``temperature``, ``top_p``, ``stop``, ``seed``, ``logprobs`` + ``echo``), ``POST /v1/chat/completions``.
``echo`` with ``logprobs`` needs an adapter with ``prompt_logprobs`` (the ``hf`` adapter has it): that is
how the ``openai`` adapter scores log-likelihoods. As with other OpenAI-compatible servers, the first
prompt token has no log-probability (``null``).

It lets one compare runtimes on the same weights (``hf`` in-process against ``openai`` over HTTP):

    $ evalhub serve-openai /data/tiny/step-300 --port 8011
    >>> OpenAIAdapter().load(CheckpointRef(..., runtime="openai", params={"base_url": "http://127.0.0.1:8011/v1"}))
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from evalhub.adapters.base import Adapter, GenerationParams

if TYPE_CHECKING:
    from fastapi import FastAPI


class CompletionRequest(BaseModel):
    """The body of ``POST /v1/completions`` (``n`` is always 1)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class ChatMessage(BaseModel):
    """One message of a chat."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = None


class ChatRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _chat_prompt(adapter: Adapter, messages: list[dict[str, Any]]) -> str:
    """The prompt of a chat: the tokenizer's chat template if it has one, else the contents joined by
    newlines (so one user message is its content verbatim)."""
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text
    return "\n".join(str(m.get("content") or "") for m in messages)


def create_app(adapter: Adapter, model_name: str) -> FastAPI:
    """The FastAPI app serving ``adapter`` under the model id ``model_name``. Calls are serialised."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="evalhub OpenAI-compatible server", version="1")
    lock = threading.Lock()

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": {"message": str(exc.detail), "type": "invalid_request_error", "code": None}},
        )

    def check_model(name: str | None) -> None:
        if name not in (None, "", model_name):
            raise HTTPException(404, f"model {name!r} does not exist; this server serves {model_name!r}")

    def params(max_tokens: int, body: Any) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=max_tokens,
            until=_stops(body.stop),
            temperature=body.temperature,
            top_p=body.top_p,
            do_sample=body.temperature > 0,
            seed=body.seed,
        )

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_name, "object": "model", "created": int(time.time()), "owned_by": "evalhub"}
            ],
        }

    @app.post("/v1/completions")
    def completions(body: CompletionRequest) -> dict[str, Any]:
        check_model(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts:
            raise HTTPException(400, "prompt is empty")
        scorer = getattr(adapter, "prompt_logprobs", None)
        if body.logprobs is not None and scorer is None:
            raise HTTPException(400, f"the {adapter.runtime} runtime behind this server gives no logprobs")
        with lock:
            if body.max_tokens > 0:
                generations = adapter.generate(prompts, params(body.max_tokens, body))
                texts = [g.text for g in generations]
            else:
                generations, texts = [], [""] * len(prompts)
            scored = (
                scorer([p + t for p, t in zip(prompts, texts, strict=True)], body.logprobs)
                if scorer and body.logprobs is not None
                else None
            )
        choices = []
        usage_in = usage_out = 0
        for i, prompt in enumerate(prompts):
            gen = generations[i] if generations else None
            tokens_in = (gen.tokens_in or 0) if gen else 0
            tokens_out = (gen.tokens_out or 0) if gen else 0
            usage_in += tokens_in
            usage_out += tokens_out
            logprobs = None
            if scored is not None:
                start = 0 if body.echo else len(prompt)
                items = [t for t in scored[i] if t.offset >= start]
                logprobs = {
                    "tokens": [t.token for t in items],
                    "token_logprobs": [t.logprob for t in items],
                    "top_logprobs": [t.top if t.logprob is not None else None for t in items],
                    "text_offset": [t.offset for t in items],
                }
            choices.append(
                {
                    "index": i,
                    "text": (prompt if body.echo else "") + texts[i],
                    "logprobs": logprobs,
                    "finish_reason": "length" if gen is None or tokens_out >= body.max_tokens else "stop",
                }
            )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": usage_in,
                "completion_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
            },
        }

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest) -> dict[str, Any]:
        check_model(body.model)
        prompt = _chat_prompt(adapter, [m.model_dump() for m in body.messages])
        max_tokens = body.max_completion_tokens or body.max_tokens or 256
        with lock:
            gen = adapter.generate([prompt], params(max_tokens, body))[0]
        tokens_in, tokens_out = gen.tokens_in or 0, gen.tokens_out or 0
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.text},
                    "finish_reason": "length" if tokens_out >= max_tokens else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }

    return app


@dataclass
class RunningServer:
    """A server started by ``start``: its base URL (ending in ``/v1``) and a ``stop`` to end it."""

    url: str
    stop: Callable[[], None]

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(adapter: Adapter, model_name: str, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``adapter`` on a background thread (``port=0``: a free port) until ``stop()``."""
    import uvicorn

    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on each connection (with proto 0 it does not,
    # and an answer on a kept-alive connection waits ~40 ms for the client's delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(adapter, model_name), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="serve-openai")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            from evalhub.errors import EvalhubError

            raise EvalhubError(f"the OpenAI-compatible server did not start on {host}:{bound_port}")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return RunningServer(url=f"http://{host}:{bound_port}/v1", stop=stop)


def serve(adapter: Adapter, model_name: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``adapter`` in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(adapter, model_name), host=host, port=port, log_level="info")
