"""The hf adapter on the real tiny model: identical to lm-eval's own ``hf`` backend (HFLM), batching,
padding, sampling, token counts and memory. GPU tests run on a lent CUDA machine and skip elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _tinymodel import tiny_path

from evalhub import tiny
from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter
from evalhub.adapters.hf import HFAdapter

GEN_KWARGS = {"until": ["\n"], "max_gen_toks": 8, "do_sample": False}


def _adapter(path: Path | None = None, **params: Any) -> HFAdapter:
    adapter = load_adapter(CheckpointRef("tiny-gpt", "step", str(path or tiny_path()), "hf", params=params))
    assert isinstance(adapter, HFAdapter)
    return adapter


@pytest.fixture(scope="module")
def hflm() -> Any:
    """lm-eval's own hf backend on the same checkpoint, as lm_eval.simple_evaluate(model='hf') builds it."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_path()), batch_size=16, device="cpu")


def _instances(kind: str, args: list[tuple[Any, ...]]) -> list[Any]:
    from lm_eval.api.instance import Instance

    return [Instance(kind, {}, a, i) for i, a in enumerate(args)]


def test_greedy_generations_equal_lm_eval_hf(hflm: Any) -> None:
    questions = [r["question"] for r in tiny.add_rows(40, seed=7)] + ["7+", "", "abc xyz 12"]
    expected = hflm.generate_until(_instances("generate_until", [(q, dict(GEN_KWARGS)) for q in questions]))
    got = _adapter(batch_size=16).generate(questions, GenerationParams.from_kwargs(GEN_KWARGS))
    assert [g.text for g in got] == expected


def test_loglikelihoods_equal_lm_eval_hf(hflm: Any) -> None:
    rows = tiny.mc_rows(15, seed=7)
    requests = [(r["question"], " " + c) for r in rows for c in r["choices"]]
    requests += [("", "12+3= 15"), ("1+1= ", "2"), ("9+9=", " 18\n")]  # empty context, trailing space
    expected = hflm.loglikelihood(_instances("loglikelihood", requests))
    assert _adapter(batch_size=16).loglikelihood(requests) == expected


def test_rolling_loglikelihoods_equal_lm_eval_hf(hflm: Any) -> None:
    texts = ["12+3= 15\n" * 12, "1+1= 2\n", "Hello world"]  # the first is longer than the 64-token context
    expected = hflm.loglikelihood_rolling(_instances("loglikelihood_rolling", [(t,) for t in texts]))
    assert _adapter(batch_size=16).loglikelihood_rolling(texts) == pytest.approx(expected, rel=1e-6)


def test_batch_size_does_not_change_greedy_outputs() -> None:
    questions = [r["question"] for r in tiny.add_rows(20, seed=9)]
    params = GenerationParams(max_new_tokens=6, until=("\n",))
    one = [g.text for g in _adapter(batch_size=1).generate(questions, params)]
    many = [g.text for g in _adapter(batch_size=16).generate(questions, params)]
    assert one == many


def test_sampling_is_seeded() -> None:
    adapter = _adapter()
    questions = [r["question"] for r in tiny.add_rows(12, seed=2)]
    params = GenerationParams(max_new_tokens=6, until=("\n",), temperature=1.5, do_sample=True, seed=11)
    first = [g.text for g in adapter.generate(questions, params)]
    assert [g.text for g in adapter.generate(questions, params)] == first
    other = GenerationParams(max_new_tokens=6, until=("\n",), temperature=1.5, do_sample=True, seed=12)
    assert [g.text for g in adapter.generate(questions * 3, other)] != first * 3


def test_token_counts_and_stats() -> None:
    adapter = _adapter()
    out = adapter.generate(["12+7= ", "3+4= "], GenerationParams(max_new_tokens=8, until=("\n",)))
    assert [g.tokens_in for g in out] == [7, 6]  # <|bos|> and one token per digit, operator and space
    for g in out:  # the answer's characters plus the newline that stopped it
        assert g.tokens_out == len(g.text) + 1
    assert adapter.stats.tokens_in == 13
    assert adapter.stats.tokens_out == sum(g.tokens_out for g in out)
    assert len(adapter.stats.latencies_ms) == 2
    # each request's latency runs from its batch's start to its own end; the first token comes before
    assert all(g.latency_ms is not None and g.ttft_ms is not None for g in out)
    assert all(0 < g.ttft_ms <= g.latency_ms for g in out)  # type: ignore[operator]
    assert adapter.stats.latencies_ms == [g.latency_ms for g in out]


def test_a_likelihood_request_takes_the_time_of_its_forward_pass_not_a_share_of_it() -> None:
    adapter = _adapter(batch_size=4)
    requests = [(r["question"], " " + c) for r in tiny.mc_rows(6, seed=1) for c in r["choices"]]
    batches: list[int] = []
    adapter.loglikelihood(requests, on_batch=batches.append)
    latencies = adapter.last_latencies_ms
    assert len(latencies) == len(requests) and all(ms > 0 for ms in latencies)
    # one report per forward pass of up to 4 rows (choices that feed the model the same tokens share a
    # row, lm-eval's logits cache); each request gets its pass's whole wall time, not a share of it
    assert sum(batches) == len(requests) and len(batches) >= len(requests) // (4 * 4)
    assert len(set(latencies)) <= len(batches)


def test_pad_token_falls_back_to_eos(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = tmp_path / "nopad"
    src = tiny_path()
    for item in src.iterdir():
        (folder / item.name).parent.mkdir(parents=True, exist_ok=True)
        (folder / item.name).write_bytes(item.read_bytes())
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = None
    tok.unk_token = None
    tok.save_pretrained(folder)
    adapter = _adapter(folder)
    assert adapter.tokenizer.pad_token_id == adapter.tokenizer.eos_token_id
    out = adapter.generate(["1+2= ", "12+30= "], GenerationParams(max_new_tokens=4, until=("\n",)))
    reference = _adapter().generate(["1+2= ", "12+30= "], GenerationParams(max_new_tokens=4, until=("\n",)))
    assert [g.text for g in out] == [g.text for g in reference]


def test_cpu_runs_float32_and_leaves_peak_memory_to_the_engine() -> None:
    import torch

    adapter = _adapter()
    assert adapter.model.dtype == torch.float32
    assert adapter.device == "cpu"
    assert adapter.peak_memory_mb() is None  # no GPU: the engine samples resident memory per run


def test_too_many_new_tokens_for_the_context_is_refused() -> None:
    from evalhub.errors import AdapterError

    with pytest.raises(AdapterError, match="lower max_new_tokens"):
        _adapter().generate(["1+1= "], GenerationParams(max_new_tokens=256))


def test_prompt_logprobs_match_loglikelihood() -> None:
    adapter = _adapter()
    (tokens,) = adapter.prompt_logprobs(["12+7= 19"], top=3)
    # <|bos|> first (the tokenizer adds it, as lm-eval's encoding does), then one token per character
    assert [t.token for t in tokens] == ["<|bos|>", *"12+7= 19"]
    assert [t.offset for t in tokens] == [0, *range(8)]
    assert tokens[0].logprob is None and tokens[1].logprob is not None
    ((expected, _),) = adapter.loglikelihood([("12+7=", " 19")])
    assert sum(t.logprob for t in tokens[6:] if t.logprob is not None) == pytest.approx(expected, abs=1e-5)
    assert all(len(t.top) == 3 for t in tokens[1:])


def test_chat_prompts_use_the_tokenizers_template_like_lm_eval(hflm: Any) -> None:
    adapter = _adapter()
    chat = [{"role": "system", "content": "Add."}, {"role": "user", "content": "12+7= "}]
    assert adapter.chat_template() == tiny.CHAT_TEMPLATE
    rendered = adapter.apply_chat_template(chat)
    assert (
        rendered
        == hflm.apply_chat_template(chat)
        == "<|bos|><|system|>Add.<|end|>\n<|user|>12+7= <|end|>\n<|assistant|>"
    )
    # the rendered prompt starts with <|bos|>: no second one is added
    assert (
        adapter.encoder is not None
        and adapter.encoder.encode(rendered).count(adapter.tokenizer.bos_token_id) == 1
    )


def test_a_tokenizer_without_a_chat_template_is_refused_by_name(tmp_path: Path) -> None:
    import json

    from evalhub.errors import AdapterError

    folder = tmp_path / "nochat"
    folder.mkdir()
    for item in tiny_path().iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    for name in ("chat_template.jinja", "chat_template.json"):
        (folder / name).unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    adapter = _adapter(folder)
    assert adapter.chat_template() is None
    with pytest.raises(AdapterError, match=r"tiny-gpt/step has no chat template.*apply_chat_template: false"):
        adapter.apply_chat_template([{"role": "user", "content": "1+1= "}])


cuda = pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (runs on a lent device)"
)


@pytest.mark.gpu
@cuda
def test_gpu_loads_bfloat16_and_reports_cuda_peak_memory() -> None:
    import torch

    adapter = _adapter()
    assert adapter.device == "cuda" and adapter.model.dtype == torch.bfloat16
    out = adapter.generate(
        [r["question"] for r in tiny.add_rows(32)], GenerationParams(max_new_tokens=6, until=("\n",))
    )
    assert len(out) == 32 and all("\n" not in g.text for g in out)
    peak = adapter.peak_memory_mb()
    assert peak is not None and 0 < peak == torch.cuda.max_memory_allocated() / 2**20


@pytest.mark.gpu
@cuda
def test_gpu_float32_matches_cpu() -> None:
    questions = [r["question"] for r in tiny.add_rows(40, seed=4)]
    params = GenerationParams(max_new_tokens=6, until=("\n",))
    gpu = _adapter(device="cuda", dtype="float32")
    cpu = _adapter(device="cpu")
    assert [g.text for g in gpu.generate(questions, params)] == [
        g.text for g in cpu.generate(questions, params)
    ]
    requests = [(r["question"], " " + c) for r in tiny.mc_rows(10) for c in r["choices"]]
    got = [lp for lp, _ in gpu.loglikelihood(requests)]
    assert got == pytest.approx([lp for lp, _ in cpu.loglikelihood(requests)], abs=1e-3)
