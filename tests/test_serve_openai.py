"""evalhub.serve_openai: a real uvicorn server over real adapters (hf on the tiny model, python plugin),
spoken to over HTTP with httpx, and the ``evalhub serve-openai`` command as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _tinymodel import FIXTURE_REPO, tiny_path

from evalhub import tiny
from evalhub.adapters import Adapter, CheckpointRef, GenerationParams, load_adapter
from evalhub.serve_openai import start


@pytest.fixture(scope="module")
def hf_adapter() -> Iterator[Adapter]:
    adapter = load_adapter(CheckpointRef("tiny-gpt", "step", str(tiny_path()), "hf"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def base_url(hf_adapter: Adapter) -> Iterator[str]:
    backend = load_adapter(CheckpointRef("tiny-gpt", "step", str(tiny_path()), "hf"))
    with start(backend, "tiny-gpt") as running:
        yield running.url


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, json=body, timeout=60)


def test_models_lists_the_served_model(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/models").json()
    assert answer["object"] == "list"
    assert [m["id"] for m in answer["data"]] == ["tiny-gpt"]


def test_greedy_completions_equal_the_hf_adapter(base_url: str, hf_adapter: Adapter) -> None:
    prompts = [r["question"] for r in tiny.add_rows(24, seed=8)]
    body = {"model": "tiny-gpt", "prompt": prompts, "max_tokens": 6, "temperature": 0, "stop": ["\n"]}
    answer = _post(f"{base_url}/completions", body).json()
    texts = [c["text"] for c in sorted(answer["choices"], key=lambda c: c["index"])]
    expected = hf_adapter.generate(prompts, GenerationParams(max_new_tokens=6, until=("\n",)))
    assert texts == [g.text for g in expected]
    assert answer["usage"]["prompt_tokens"] == sum(g.tokens_in for g in expected)
    assert answer["usage"]["completion_tokens"] == sum(g.tokens_out for g in expected)


def test_completion_finish_reason_length_and_stop(base_url: str) -> None:
    long = _post(f"{base_url}/completions", {"prompt": "1+1= ", "max_tokens": 1, "temperature": 0}).json()
    assert long["choices"][0]["finish_reason"] == "length"
    short = _post(
        f"{base_url}/completions", {"prompt": "1+1= ", "max_tokens": 8, "temperature": 0, "stop": "\n"}
    )
    assert short.json()["choices"][0]["finish_reason"] == "stop"


def test_echo_logprobs_score_the_prompt(base_url: str, hf_adapter: Adapter) -> None:
    body = {"prompt": "12+7= 19", "max_tokens": 0, "echo": True, "logprobs": 2}
    choice = _post(f"{base_url}/completions", body).json()["choices"][0]
    assert choice["text"] == "12+7= 19"
    logprobs = choice["logprobs"]
    # the tokenizer's <|bos|> comes first, unscored, at offset 0 (as vLLM's server echoes a BOS)
    assert logprobs["tokens"] == ["<|bos|>", *"12+7= 19"]
    assert logprobs["text_offset"] == [0, *range(8)]
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert all(len(top) == 2 for top in logprobs["top_logprobs"][1:])
    ((expected, _),) = hf_adapter.loglikelihood([("12+7=", " 19")])
    assert sum(logprobs["token_logprobs"][6:]) == pytest.approx(expected, abs=1e-5)


def test_logprobs_without_echo_cover_the_generated_tokens(base_url: str) -> None:
    body = {"prompt": "3+4= ", "max_tokens": 4, "temperature": 0, "stop": "\n", "logprobs": 1}
    choice = _post(f"{base_url}/completions", body).json()["choices"][0]
    assert "".join(choice["logprobs"]["tokens"]) == choice["text"]
    assert min(choice["logprobs"]["text_offset"]) == len("3+4= ")


def test_chat_completion_renders_the_tokenizers_chat_template(base_url: str, hf_adapter: Adapter) -> None:
    messages = [{"role": "user", "content": "21+5= "}]
    body = {"messages": messages, "max_tokens": 6, "temperature": 0, "stop": ["\n"]}
    answer = _post(f"{base_url}/chat/completions", body).json()
    prompt = hf_adapter.apply_chat_template(messages)
    (expected,) = hf_adapter.generate([prompt], GenerationParams(max_new_tokens=6, until=("\n",)))
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": expected.text}


def test_unknown_model_is_a_404_with_an_openai_error_body(base_url: str) -> None:
    answer = _post(f"{base_url}/completions", {"model": "gpt-9", "prompt": "1+1= "})
    assert answer.status_code == 404
    assert "gpt-9" in answer.json()["error"]["message"]


def test_bad_request_is_refused(base_url: str) -> None:
    answer = _post(f"{base_url}/completions", {"prompt": "1+1= ", "max_tokens": -3})
    assert answer.status_code == 422


def test_logprobs_from_an_adapter_without_them_is_a_400() -> None:
    plugin = load_adapter(
        CheckpointRef(
            "arith-solver",
            "v2",
            str(FIXTURE_REPO / "weights" / "v2"),
            "python",
            adapter="arith_solver:ArithSolver",
            code_uri=str(FIXTURE_REPO),
        )
    )
    with start(plugin, "arith-solver") as running:
        ok = _post(f"{running.url}/completions", {"prompt": "12+30= ", "max_tokens": 4, "stop": "\n"}).json()
        assert ok["choices"][0]["text"] == "42"
        refused = _post(f"{running.url}/completions", {"prompt": "1+1= ", "echo": True, "logprobs": 1})
    assert refused.status_code == 400
    assert "no logprobs" in refused.json()["error"]["message"]


def test_serve_openai_command_serves_a_checkpoint_folder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalhub.cli",
            "serve-openai",
            str(tiny_path()),
            "--port",
            str(port),
            "--name",
            "tiny",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve-openai did not come up"
                time.sleep(0.3)
        assert models["data"][0]["id"] == "tiny"
        answer = _post(
            f"http://127.0.0.1:{port}/v1/completions",
            {"model": "tiny", "prompt": "2+2= ", "max_tokens": 4, "temperature": 0, "stop": "\n"},
        )
        assert answer.status_code == 200 and isinstance(answer.json()["choices"][0]["text"], str)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
