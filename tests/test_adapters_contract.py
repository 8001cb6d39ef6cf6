"""The adapter contract, checked against every runtime that can run here:

- ``hf`` on the trained tiny model,
- ``openai`` through ``evalhub.serve_openai`` (a real HTTP server over the hf adapter),
- ``python`` through the fixture plugin repo (tests/fixtures/plugin_repo),
- ``vllm`` wherever vLLM imports (it needs a CUDA GPU; skipped here otherwise).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from _tinymodel import FIXTURE_REPO, tiny_path

from evalhub import tiny
from evalhub.adapters import Adapter, CheckpointRef, Generation, GenerationParams, load_adapter
from evalhub.errors import AdapterError, WeightsNotFound

RUNTIMES = ["hf", "openai", "python", "vllm"]
GREEDY = GenerationParams(max_new_tokens=6, until=("\n",))


def _ref(runtime: str, **params: Any) -> CheckpointRef:
    if runtime == "python":
        return CheckpointRef(
            "arith-solver",
            "v2",
            str(FIXTURE_REPO / "weights" / "v2"),
            "python",
            adapter="arith_solver:ArithSolver",
            code_uri=str(FIXTURE_REPO),
            params=params,
        )
    return CheckpointRef("tiny-gpt", "step-150", str(tiny_path()), runtime, params=params)


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    from evalhub.serve_openai import start

    backend = load_adapter(_ref("hf"))
    with start(backend, "tiny-gpt") as running:
        yield running.url
    backend.close()


@pytest.fixture(params=RUNTIMES)
def adapter(request: pytest.FixtureRequest) -> Iterator[Adapter]:
    runtime = request.param
    if runtime == "vllm" and importlib.util.find_spec("vllm") is None:
        pytest.skip(
            "vLLM is not installed (it needs a CUDA GPU); test_adapters_vllm.py checks its adapter with a stand-in"
        )
    params: dict[str, Any] = {"batch_size": 4}
    if runtime == "openai":
        params.update(base_url=request.getfixturevalue("openai_server"), max_concurrency=3)
    loaded = load_adapter(_ref(runtime, **params))
    yield loaded
    loaded.close()


def _prompts(n: int = 10) -> list[str]:
    return [row["question"] for row in tiny.add_rows(n, seed=3)]


def test_generate_returns_one_generation_per_prompt(adapter: Adapter) -> None:
    prompts = _prompts(9)
    out = adapter.generate(prompts, GREEDY)
    assert len(out) == len(prompts)
    assert all(isinstance(g, Generation) and isinstance(g.text, str) for g in out)
    assert adapter.stats.requests == len(prompts)


def test_generate_cuts_at_stop_sequences(adapter: Adapter) -> None:
    prompts = _prompts(8)
    newline = adapter.generate(prompts, GREEDY)
    assert all("\n" not in g.text for g in newline)
    # stopping at "1" as well keeps only what came before the first "1"
    ones = adapter.generate(prompts, GenerationParams(max_new_tokens=6, until=("\n", "1")))
    assert all("1" not in g.text for g in ones)
    assert [g.text for g in ones] == [g.text.split("1")[0] for g in newline]


def test_generate_keeps_the_order_of_prompts(adapter: Adapter) -> None:
    prompts = _prompts(11)  # prompts of different lengths, more than one batch of 4
    forward = [g.text for g in adapter.generate(prompts, GREEDY)]
    backward = [g.text for g in adapter.generate(list(reversed(prompts)), GREEDY)]
    assert backward == list(reversed(forward))
    assert [g.text for g in adapter.generate(prompts[3:4], GREEDY)] == forward[3:4]


def test_loglikelihood_returns_one_score_per_request(adapter: Adapter) -> None:
    requests = [("2+3=", " 5"), ("12+7=", " 19"), ("4+4=", " 9")]
    out = adapter.loglikelihood(requests)
    assert len(out) == 3
    assert all(isinstance(lp, float) and lp <= 0.0 and isinstance(g, bool) for lp, g in out)


def test_gold_continuation_scores_higher_than_distractors(adapter: Adapter) -> None:
    rows = tiny.mc_rows(30, seed=5)
    requests = [(row["question"], " " + choice) for row in rows for choice in row["choices"]]
    scores = [lp for lp, _ in adapter.loglikelihood(requests)]
    wins = 0
    for i, row in enumerate(rows):
        own = scores[i * len(row["choices"]) : (i + 1) * len(row["choices"])]
        gold = own[row["gold"]]
        others = [s for j, s in enumerate(own) if j != row["gold"]]
        wins += int(gold > sum(others) / len(others))
    assert wins >= 0.8 * len(rows)


def test_missing_weights_raise_weights_not_found(tmp_path: Any) -> None:
    missing = str(tmp_path / "no-such-checkpoint")
    for runtime, extra in (
        ("hf", {}),
        ("python", {"adapter": "arith_solver:ArithSolver", "code_uri": str(FIXTURE_REPO)}),
    ):
        with pytest.raises(WeightsNotFound, match="no-such-checkpoint"):
            load_adapter(CheckpointRef("m", "c", missing, runtime, **extra))


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(AdapterError, match="unknown runtime 'tensorrt'"):
        load_adapter(CheckpointRef("m", "c", "/x", "tensorrt"))
