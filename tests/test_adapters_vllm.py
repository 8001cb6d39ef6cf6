"""The vllm adapter's own code (token-id prompts, stop handling, prompt_logprobs parsing, rolling windows).

vLLM cannot run here (no GPU, not installed), so these tests put a STAND-IN ``vllm`` module in
``sys.modules``: a minimal ``LLM``/``SamplingParams`` with vLLM's call shapes, computing with the same
transformers model, one sequence at a time. The adapter's answers must equal the hf adapter's. Where real
vLLM imports, tests/test_adapters_contract.py runs the real engine instead.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from _tinymodel import tiny_path

from evalhub import tiny
from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter
from evalhub.errors import AdapterError


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:
    def __init__(self, max_tokens: int = 16, temperature: float = 1.0, top_p: float = 1.0, stop: Any = None,
                 seed: int | None = None, prompt_logprobs: int | None = None, detokenize: bool = True) -> None:  # fmt: skip
        self.max_tokens, self.temperature, self.top_p, self.stop = max_tokens, temperature, top_p, stop or []
        self.seed, self.prompt_logprobs = seed, prompt_logprobs


class LLM:
    """Stand-in for vllm.LLM over transformers: greedy only, one sequence at a time."""

    instances: ClassVar[list[LLM]] = []

    def __init__(self, model: str, tokenizer: str, **kwargs: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.kwargs = {"model": model, "tokenizer": tokenizer, **kwargs}
        self.model = AutoModelForCausalLM.from_pretrained(model).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.llm_engine = types.SimpleNamespace(
            model_config=types.SimpleNamespace(max_model_len=self.model.config.n_positions)
        )
        LLM.instances.append(self)

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(
        self, prompts: list[dict[str, Any]], sampling_params: SamplingParams, use_tqdm: bool = True
    ) -> list[Any]:
        import torch

        assert sampling_params.temperature == 0.0, "the stand-in only does greedy decoding"
        outputs = []
        for prompt in prompts:
            ids = list(prompt["prompt_token_ids"])
            if len(ids) > self.llm_engine.model_config.max_model_len:
                raise ValueError(f"prompt of {len(ids)} tokens is longer than max_model_len")
            prompt_logprobs = None
            with torch.inference_mode():
                if sampling_params.prompt_logprobs:
                    rows = torch.log_softmax(self.model(torch.tensor([ids])).logits[0], dim=-1)
                    prompt_logprobs = [None]
                    for pos in range(1, len(ids)):
                        row = rows[pos - 1]
                        best = int(row.argmax())
                        entry = {
                            ids[pos]: Logprob(float(row[ids[pos]]), int((row > row[ids[pos]]).sum()) + 1)
                        }
                        entry.setdefault(best, Logprob(float(row[best]), 1))
                        prompt_logprobs.append(entry)
                new: list[int] = []
                text = ""
                for _ in range(sampling_params.max_tokens):
                    token = int(self.model(torch.tensor([ids + new])).logits[0, -1].argmax())
                    if token == self.tokenizer.eos_token_id:
                        break
                    new.append(token)
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    hits = [text.find(s) for s in sampling_params.stop if s in text]
                    if hits:
                        text = text[: min(hits)]  # vLLM leaves the stop string out
                        break
            completion = types.SimpleNamespace(text=text, token_ids=new)
            # vLLM's per-request timings (RequestOutput.metrics): arrival, first token, finish
            metrics = types.SimpleNamespace(arrival_time=100.0, first_token_time=100.25, finished_time=100.5)
            outputs.append(
                types.SimpleNamespace(outputs=[completion], prompt_logprobs=prompt_logprobs, metrics=metrics)
            )
        return outputs


@pytest.fixture
def stand_in_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = LLM  # type: ignore[attr-defined]
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    LLM.instances.clear()
    return module


def _ref(runtime: str, **params: Any) -> CheckpointRef:
    return CheckpointRef("tiny-gpt", "step", str(tiny_path()), runtime, params=params)


def test_load_passes_engine_settings(stand_in_vllm: types.ModuleType) -> None:
    load_adapter(_ref("vllm", gpu_memory_utilization=0.5, seed=7, dtype="bfloat16"))
    (llm,) = LLM.instances
    assert llm.kwargs["model"] == str(tiny_path()) == llm.kwargs["tokenizer"]
    assert llm.kwargs["gpu_memory_utilization"] == 0.5
    assert llm.kwargs["seed"] == 7 and llm.kwargs["dtype"] == "bfloat16"


def test_greedy_generations_equal_the_hf_adapter(stand_in_vllm: types.ModuleType) -> None:
    prompts = [r["question"] for r in tiny.add_rows(16, seed=6)]
    params = GenerationParams(max_new_tokens=6, until=("\n",))
    got = load_adapter(_ref("vllm")).generate(prompts, params)
    expected = load_adapter(_ref("hf")).generate(prompts, params)
    assert [g.text for g in got] == [g.text for g in expected]
    assert [g.tokens_in for g in got] == [g.tokens_in for g in expected]


def test_requests_take_vllms_own_timings(stand_in_vllm: types.ModuleType) -> None:
    prompts = [r["question"] for r in tiny.add_rows(3, seed=6)]
    got = load_adapter(_ref("vllm")).generate(prompts, GenerationParams(max_new_tokens=6, until=("\n",)))
    assert [(g.latency_ms, g.ttft_ms) for g in got] == [(500.0, 250.0)] * 3


def test_chats_render_with_the_tokenizers_template_as_for_hf(stand_in_vllm: types.ModuleType) -> None:
    # the stand-in computes with transformers: this checks the adapter's own path (the tokenizer's chat
    # template, token-id prompts), not vLLM's engine
    chats = [[{"role": "user", "content": r["question"]}] for r in tiny.add_rows(6, seed=2)]
    vllm, hf = load_adapter(_ref("vllm")), load_adapter(_ref("hf"))
    assert vllm.chat_template() == hf.chat_template() == tiny.CHAT_TEMPLATE
    prompts = [vllm.apply_chat_template(c) for c in chats]
    assert prompts == [hf.apply_chat_template(c) for c in chats]
    params = GenerationParams(max_new_tokens=6, until=("\n",))
    assert [g.text for g in vllm.generate(prompts, params)] == [g.text for g in hf.generate(prompts, params)]


def test_loglikelihoods_equal_the_hf_adapter(stand_in_vllm: types.ModuleType) -> None:
    rows = tiny.mc_rows(8, seed=6)
    requests = [(r["question"], " " + c) for r in rows for c in r["choices"]] + [("", "1+1= 2")]
    got = load_adapter(_ref("vllm")).loglikelihood(requests)
    expected = load_adapter(_ref("hf")).loglikelihood(requests)
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-4)
    assert [g for _, g in got] == [g for _, g in expected]


def test_rolling_loglikelihoods_equal_the_hf_adapter(stand_in_vllm: types.ModuleType) -> None:
    texts = ["12+3= 15\n", "3+4= 7\n" * 50]  # the second spans several windows
    vllm = load_adapter(_ref("vllm"))
    got = vllm.loglikelihood_rolling(texts)
    # a vLLM prompt holds a window's context too, so its windows are one token shorter than hf's
    expected = load_adapter(_ref("hf", max_length=vllm.max_length - 1)).loglikelihood_rolling(texts)  # type: ignore[attr-defined]
    assert got == pytest.approx(expected, abs=1e-3)


def test_without_vllm_the_load_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(AdapterError, match=r"pip install 'evalhub\[vllm\]'"):
        load_adapter(_ref("vllm"))
