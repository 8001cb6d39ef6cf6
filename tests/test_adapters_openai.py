"""The openai adapter against a real evalhub.serve_openai server over the tiny model, with a real
HTTP fault-injecting proxy in front of it for retries and concurrency (no mocked HTTP client)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _tinymodel import tiny_path

from evalhub import tiny
from evalhub.adapters import Adapter, CheckpointRef, GenerationParams, load_adapter
from evalhub.errors import AdapterError
from evalhub.serve_openai import start


@pytest.fixture(scope="module")
def hf_adapter() -> Iterator[Adapter]:
    adapter = load_adapter(CheckpointRef("tiny-gpt", "step", str(tiny_path()), "hf"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    backend = load_adapter(CheckpointRef("tiny-gpt", "step", str(tiny_path()), "hf"))
    with start(backend, "tiny-gpt") as running:
        yield running.url


class Proxy:
    """Forwards to ``upstream``; the first ``fail_first`` POSTs answer ``fail_status``; counts concurrency."""

    def __init__(self, upstream: str, fail_first: int = 0, fail_status: int = 503) -> None:
        self.upstream = upstream.rsplit("/v1", 1)[0]
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.posts = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                body = (
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    if method == "POST"
                    else None
                )
                with proxy.lock:
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    if method == "POST":
                        proxy.posts += 1
                    failing = method == "POST" and proxy.posts <= proxy.fail_first
                try:
                    if failing:
                        status, payload = proxy.fail_status, b'{"error": {"message": "injected failure"}}'
                    else:
                        answer = httpx.request(
                            method,
                            proxy.upstream + self.path,
                            content=body,
                            headers={"Content-Type": "application/json"},
                            timeout=60,
                        )
                        status, payload = answer.status_code, answer.content
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _openai(base_url: str, **params: Any) -> Adapter:
    return load_adapter(
        CheckpointRef("tiny-gpt", "step", str(tiny_path()), "openai", params={"base_url": base_url, **params})
    )


def test_model_name_comes_from_the_endpoint(upstream: str) -> None:
    assert _openai(upstream).model_name == "tiny-gpt"  # type: ignore[attr-defined]


def test_loglikelihoods_equal_the_hf_adapter(upstream: str, hf_adapter: Adapter) -> None:
    rows = tiny.mc_rows(12, seed=4)
    requests = [(r["question"], " " + c) for r in rows for c in r["choices"]] + [("1+1= ", "2")]
    got = _openai(upstream, max_concurrency=5).loglikelihood(requests)
    expected = hf_adapter.loglikelihood(requests)
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-4)
    assert [g for _, g in got] == [g for _, g in expected]


def test_retries_through_transient_server_errors(upstream: str, hf_adapter: Adapter) -> None:
    proxy = Proxy(upstream, fail_first=2, fail_status=503)
    try:
        adapter = _openai(proxy.url, retry_backoff=0.01, max_retries=3, max_concurrency=1)
        out = adapter.generate(["3+4= ", "21+5= "], GenerationParams(max_new_tokens=4, until=("\n",)))
    finally:
        proxy.close()
    expected = hf_adapter.generate(["3+4= ", "21+5= "], GenerationParams(max_new_tokens=4, until=("\n",)))
    assert [g.text for g in out] == [g.text for g in expected]
    assert proxy.posts == 4  # one prompt per request: two failed first attempts, two retries


def test_gives_up_after_max_retries_with_the_servers_message(upstream: str) -> None:
    proxy = Proxy(upstream, fail_first=100, fail_status=502)
    try:
        adapter = _openai(proxy.url, retry_backoff=0.01, max_retries=2, max_concurrency=1)
        with pytest.raises(AdapterError, match=r"502.*injected failure.*after 3 attempts"):
            adapter.generate(["1+1= "], GenerationParams(max_new_tokens=2))
    finally:
        proxy.close()
    assert proxy.posts == 3


def test_client_errors_are_not_retried(upstream: str) -> None:
    proxy = Proxy(upstream, fail_first=100, fail_status=400)
    try:
        adapter = _openai(proxy.url, retry_backoff=0.01, max_retries=5, model="tiny-gpt")
        with pytest.raises(AdapterError, match="400"):
            adapter.generate(["1+1= "], GenerationParams(max_new_tokens=2))
    finally:
        proxy.close()
    assert proxy.posts == 1


def test_concurrency_is_bounded(upstream: str) -> None:
    proxy = Proxy(upstream)
    try:
        adapter = _openai(proxy.url, max_concurrency=3, model="tiny-gpt")
        prompts = [r["question"] for r in tiny.add_rows(24, seed=1)]
        out = adapter.generate(prompts, GenerationParams(max_new_tokens=4, until=("\n",)))
    finally:
        proxy.close()
    assert len(out) == 24
    assert proxy.posts == 24
    assert 1 < proxy.max_in_flight <= 3


def test_chat_mode_refuses_loglikelihood(upstream: str) -> None:
    adapter = _openai(upstream, mode="chat")
    with pytest.raises(AdapterError, match="chat mode gives no log-likelihoods"):
        adapter.loglikelihood([("1+1=", " 2")])


def test_missing_base_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AdapterError, match=r"params\.base_url"):
        load_adapter(CheckpointRef("m", "c", "openai://gpt-x", "openai"))


def test_unreachable_endpoint_fails_with_the_url() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AdapterError, match=f"cannot reach http://127.0.0.1:{port}/v1/models"):
        _openai(f"http://127.0.0.1:{port}/v1", max_retries=1, retry_backoff=0.01)
