"""The ``openai`` runtime against a server evalhub didn't write: ``transformers serve`` (transformers' own
OpenAI-compatible server) hosting the tiny model, as a subprocess on 127.0.0.1, offline.

That server takes one prompt per request (a list is a 400) and ignores ``echo``/``logprobs``: generation
tasks must give the outputs the ``hf`` runtime gives on the same weights, and likelihood tasks must be
refused at once, naming the missing capability.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _evalsetup import register_tiny, tiny_build

from evalhub import tiny
from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter
from evalhub.errors import AdapterError

pytestmark = pytest.mark.slow
GREEDY = GenerationParams(max_new_tokens=8, until=("\n",))


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def checkpoint(build: Any) -> Path:
    return Path(build.checkpoints[max(build.checkpoints)])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def peer(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``transformers serve <checkpoint>`` (the model pinned, on CPU) on a free port; its base URL."""
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if exe is None:
        pytest.skip("the transformers CLI is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("peer") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = [exe, "serve", str(checkpoint), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _openai(checkpoint: Path, base_url: str, **params: Any) -> Any:
    return load_adapter(
        CheckpointRef(
            "tiny-gpt", "step-300", str(checkpoint), "openai", params={"base_url": base_url, **params}
        )
    )


def test_the_peer_refuses_a_list_of_prompts(peer: str, checkpoint: Path) -> None:
    answer = httpx.post(
        f"{peer}/completions", json={"prompt": ["1+1= ", "2+2= "], "max_tokens": 2}, timeout=30
    )
    assert answer.status_code == 400 and "prompt must be a string" in answer.text


def test_generations_equal_the_hf_runtime_with_each_requests_own_usage(peer: str, checkpoint: Path) -> None:
    prompts = [r["question"] for r in tiny.add_rows(12, seed=5)]
    hf = load_adapter(CheckpointRef("tiny-gpt", "step-300", str(checkpoint), "hf")).generate(prompts, GREEDY)
    adapter = _openai(checkpoint, peer, max_concurrency=3)
    assert adapter.model_name == str(checkpoint)  # the peer's /models names the pinned model
    got = adapter.generate(prompts, GREEDY)
    assert [g.text for g in got] == [g.text for g in hf]
    # the peer reports usage per request: each prompt's own count, the same tokens the hf runtime sees
    assert [g.tokens_in for g in got] == [g.tokens_in for g in hf]
    assert all(g.tokens_out is not None and g.latency_ms is not None for g in got)


def test_chats_go_to_chat_completions_and_equal_the_hf_runtime(peer: str, checkpoint: Path) -> None:
    rows = tiny.add_rows(6, seed=6)
    chats = [[{"role": "user", "content": r["question"]}] for r in rows]
    hf = load_adapter(CheckpointRef("tiny-gpt", "step-300", str(checkpoint), "hf"))
    expected = hf.generate([hf.apply_chat_template(c) for c in chats], GREEDY)
    got = _openai(checkpoint, peer).generate(chats, GREEDY)
    assert [g.text for g in got] == [g.text for g in expected]


def test_streaming_measures_the_time_to_first_token(peer: str, checkpoint: Path) -> None:
    prompts = [r["question"] for r in tiny.add_rows(4, seed=7)]
    plain = _openai(checkpoint, peer).generate(prompts, GREEDY)
    streamed = _openai(checkpoint, peer, stream=True).generate(prompts, GREEDY)
    assert [g.text for g in streamed] == [g.text for g in plain]
    assert all(g.ttft_ms is not None and g.latency_ms is not None for g in streamed)
    assert all(0 < g.ttft_ms <= g.latency_ms for g in streamed)  # type: ignore[operator]


def test_likelihoods_are_refused_at_once_naming_echo_and_logprobs(peer: str, checkpoint: Path) -> None:
    adapter = _openai(checkpoint, peer)
    with pytest.raises(AdapterError, match=r"ignores echo=true with logprobs.*log-likelihood tasks"):
        adapter.loglikelihood([("1+1=", " 2"), ("2+2=", " 4")])
    assert adapter.stats.requests == 0  # refused before any request was scored


@pytest.mark.ray
def test_one_experiment_hf_and_the_peer_agree_and_a_likelihood_task_fails_with_its_reason(
    hub: Any, build: Any, peer: str, checkpoint: Path
) -> None:
    from evalhub.execution import RayExecutor

    register_tiny(hub, build)
    spec = f"""
name: peer-{uuid.uuid4().hex[:6]}
models:
  - model: tiny-gpt
    checkpoints: [step-300]
    runtimes: [hf, openai]
    params: {{base_url: "{peer}"}}
tasks: [arith-add, arith-mc]
config: {{limit: 12, batch_size: 4}}
"""
    executor = RayExecutor(include_dashboard=False, num_cpus=2, poll_interval=0.5, start_nice=-19)
    try:
        exp = hub.run_experiment(spec, executor=executor, progress=False)
    finally:
        executor.shutdown()
    runs = {r["name"]: r for r in (hub.run(i) for i in exp.runs()["id"])}
    for name in ("hf/arith-add", "hf/arith-mc", "openai/arith-add"):
        assert runs[f"tiny-gpt/step-300/{name}"]["status"] == "completed", runs[f"tiny-gpt/step-300/{name}"]
    refused = runs["tiny-gpt/step-300/openai/arith-mc"]
    assert refused["status"] == "failed" and "ignores echo=true with logprobs" in refused["error"]
    by_runtime = {
        runtime: hub.samples(runs[f"tiny-gpt/step-300/{runtime}/arith-add"]["id"]).sort("sample_key")
        for runtime in ("hf", "openai")
    }
    assert by_runtime["hf"]["output"].to_list() == by_runtime["openai"]["output"].to_list()
    assert (
        hub.metrics(runs["tiny-gpt/step-300/hf/arith-add"]["id"])["exact_match"]
        == (hub.metrics(runs["tiny-gpt/step-300/openai/arith-add"]["id"])["exact_match"])
    )
