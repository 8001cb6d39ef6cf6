"""The tiny model: its byte-level BPE tokenizer and chat template, generated tasks, real training on CPU,
registration through a real tracking server, the ``evalhub tiny`` commands, and (slow) that later
checkpoints score better."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalhub import tiny
from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter


def _state(path: Path) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_tokenizer_is_a_byte_level_bpe_with_bos_and_a_chat_template(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tiny.build_tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "spell 305: three zero five\nWhat is 3*4? ünïcödé"
    ids = tok.encode(text)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True) == text  # byte-level: any text round-trips
    pieces = [tok.decode([i]) for i in ids[1:]]
    assert " three" in pieces and len(ids) < len(text)  # words merge into tokens
    assert [tok.decode([i]) for i in tok.encode("12+7= 19", add_special_tokens=False)] == list("12+7= 19")
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|end|>", "<|pad|>")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "1+1= "}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|bos|><|user|>1+1= <|end|>\n<|assistant|>"
    assert tok.encode(chat, add_special_tokens=False)[0] == tok.bos_token_id


def test_tokenizer_training_is_deterministic() -> None:
    one, two = tiny.build_tokenizer(), tiny.build_tokenizer()
    assert one.get_vocab() == two.get_vocab()


def test_write_tasks_is_deterministic_in_the_seed(tmp_path: Path) -> None:
    a = tiny.write_tasks(tmp_path / "a", n=50, seed=1)
    b = tiny.write_tasks(tmp_path / "b", n=50, seed=1)
    c = tiny.write_tasks(tmp_path / "c", n=50, seed=2)
    for name in (tiny.ADD_TASK, tiny.MC_TASK, tiny.SPELL_TASK):
        assert a[name].read_text() == b[name].read_text()
        assert a[name].read_text() != c[name].read_text()
        assert len(a[name].read_text().splitlines()) == 50


def test_addition_rows_hold_their_sum() -> None:
    for row in tiny.add_rows(100, seed=3):
        left, right = row["question"].removesuffix("= ").split("+")
        assert row["question"].endswith("= ")
        assert row["answer"] == str(int(left) + int(right))


def test_multiple_choice_rows_point_at_the_sum() -> None:
    for row in tiny.mc_rows(100, seed=3):
        left, right = row["question"].removesuffix("=").split("+")
        assert len(row["choices"]) == 4 == len(set(row["choices"]))
        assert row["choices"][row["gold"]] == str(int(left) + int(right)) == row["answer"]


def test_spelling_rows_spell_their_number() -> None:
    words = {
        w: str(i)
        for i, w in enumerate(
            ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
        )
    }
    for row in tiny.spell_rows(100, seed=3):
        number = row["question"].removeprefix("spell ").removesuffix(":")
        assert "".join(words[w] for w in row["answer"].split()) == number


def test_build_saves_hf_checkpoints_loadable_by_transformers_and_lm_eval(tmp_path: Path) -> None:
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = tiny.build(tmp_path, steps=12, save_every=6)
    assert sorted(result.checkpoints) == [6, 12]
    path = result.checkpoints[12]
    assert path == tmp_path.resolve() / "step-12"
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "gpt2" and model.config.n_layer == 2
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.eos_token == "<|end|>" and tokenizer.chat_template == tiny.CHAT_TEMPLATE
    lm = HFLM(pretrained=str(path), batch_size=4, device="cpu")
    assert lm.max_length == 256
    assert lm.chat_template(True) == tiny.CHAT_TEMPLATE
    assert result.final_loss == result.final_loss  # not NaN
    assert result.train_seconds > 0


def test_build_is_deterministic_in_the_seed(tmp_path: Path) -> None:
    import torch

    one = tiny.build(tmp_path / "one", steps=5, save_every=5, seed=3).checkpoints[5]
    two = tiny.build(tmp_path / "two", steps=5, save_every=5, seed=3).checkpoints[5]
    other = tiny.build(tmp_path / "other", steps=5, save_every=5, seed=4).checkpoints[5]
    a, b, c = _state(one), _state(two), _state(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_build_with_a_hub_logs_the_run_and_registers_checkpoints(hub: Any, tmp_path: Path) -> None:
    result = tiny.build(tmp_path, hub=hub, steps=10, save_every=5)
    run = hub.run(result.run_id)
    assert run["type"] == "training" and run["status"] == "completed"
    keys = {row["key"]: row for row in hub.series_keys(result.run_id).to_dicts()}
    for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
        assert keys[key]["count"] == 10 and keys[key]["max_step"] == 10
    assert hub.model(tiny.MODEL)["runtime"] == "hf"
    assert hub.family(tiny.FAMILY)["modality"] == "llm"
    checkpoints = hub.checkpoints(model=tiny.MODEL)
    assert checkpoints["name"].to_list() == ["step-5", "step-10"]
    assert checkpoints["step"].to_list() == [5, 10]
    assert checkpoints["uri"].to_list() == [str(result.checkpoints[5]), str(result.checkpoints[10])]
    assert set(checkpoints["run_id"].to_list()) == {result.run_id}


def test_build_logs_into_a_run_the_caller_opened(hub: Any, tmp_path: Path) -> None:
    run = hub.init_run("watched-training", type="training", system_metrics=False)
    result = tiny.build(tmp_path, hub=hub, steps=4, save_every=2, run=run)
    assert result.run_id == run.id
    assert hub.run(run.id)["status"] == "completed"
    assert hub.series(run.id, "loss")["step"].to_list() == [1, 2, 3, 4]
    assert set(hub.checkpoints(model=tiny.MODEL)["run_id"].to_list()) == {run.id}


def test_register_tasks_registers_the_tasks_and_the_benchmark(hub: Any, tmp_path: Path) -> None:
    tiny.write_tasks(tmp_path, n=20)
    tiny.register_tasks(hub, tmp_path)
    add, mc = hub.task(tiny.ADD_TASK), hub.task(tiny.MC_TASK)
    assert add["engine_config"]["output_type"] == "generate_until"
    assert add["engine_config"]["generation_kwargs"]["until"] == ["\n"]
    assert add["metrics"] == ["exact_match"]
    assert mc["engine_config"]["output_type"] == "multiple_choice"
    assert mc["metrics"] == ["acc"]
    spell = hub.task(tiny.SPELL_TASK)
    assert spell["metrics"] == ["bleu", "chrf", "rouge1", "rougeL"] and spell["type"] == "mt"
    aggregations = {m["metric"]: m["aggregation"] for m in spell["engine_config"]["metric_list"]}
    assert aggregations == {"bleu": "bleu", "chrf": "chrf", "rouge1": "mean", "rougeL": "mean"}
    assert hub.benchmark(tiny.BENCHMARK)["tasks"] == [tiny.ADD_TASK, tiny.MC_TASK]
    tiny.register_tasks(hub, tmp_path / "tasks")  # again, from the tasks folder: kept, no error
    assert len(hub.tasks()) == 3


def test_register_tasks_without_task_files_says_how_to_write_them(hub: Any, tmp_path: Path) -> None:
    from evalhub.errors import EvalhubError

    with pytest.raises(EvalhubError, match="evalhub tiny tasks"):
        tiny.register_tasks(hub, tmp_path)


def test_tiny_commands_write_tasks_and_build_without_a_server(tmp_path: Path) -> None:
    from evalhub.cli import main

    assert main(["tiny", "tasks", str(tmp_path), "-n", "7"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "tasks" / "arith-mc.jsonl").read_text().splitlines()]
    assert len(rows) == 7
    assert main(["tiny", "build", str(tmp_path), "--steps", "4", "--save-every", "2", "--no-register"]) == 0
    assert (tmp_path / "step-2" / "config.json").is_file() and (
        tmp_path / "step-4" / "model.safetensors"
    ).is_file()


def _exact_match(path: Path, rows: list[dict[str, Any]]) -> float:
    adapter = load_adapter(CheckpointRef(tiny.MODEL, path.name, str(path), "hf"))
    out = adapter.generate([r["question"] for r in rows], GenerationParams(max_new_tokens=8, until=("\n",)))
    return sum(g.text == r["answer"] for g, r in zip(out, rows, strict=True)) / len(rows)


def _accuracy(path: Path, rows: list[dict[str, Any]]) -> float:
    adapter = load_adapter(CheckpointRef(tiny.MODEL, path.name, str(path), "hf"))
    requests = [(r["question"], " " + c) for r in rows for c in r["choices"]]
    scores = [lp for lp, _ in adapter.loglikelihood(requests)]
    right = 0
    for i, row in enumerate(rows):
        own = scores[i * 4 : (i + 1) * 4]
        right += int(max(range(4), key=own.__getitem__) == row["gold"])
    return right / len(rows)


def _spelled_chrf(path: Path, rows: list[dict[str, Any]]) -> float:
    import sacrebleu

    adapter = load_adapter(CheckpointRef(tiny.MODEL, path.name, str(path), "hf"))
    out = adapter.generate([r["question"] for r in rows], GenerationParams(max_new_tokens=12, until=("\n",)))
    return float(sacrebleu.corpus_chrf([g.text.strip() for g in out], [[r["answer"] for r in rows]]).score)


def _chat_exact_match(path: Path, rows: list[dict[str, Any]]) -> float:
    adapter = load_adapter(CheckpointRef(tiny.MODEL, path.name, str(path), "hf"))
    prompts = [adapter.apply_chat_template([{"role": "user", "content": r["question"]}]) for r in rows]
    out = adapter.generate(prompts, GenerationParams(max_new_tokens=8, until=("\n",)))
    return sum(g.text == r["answer"] for g, r in zip(out, rows, strict=True)) / len(rows)


@pytest.mark.slow
def test_later_checkpoints_score_clearly_better(tmp_path: Path) -> None:
    result = tiny.build(tmp_path, steps=300, save_every=100, seed=0)
    add, mc, words = tiny.add_rows(200, seed=0), tiny.mc_rows(200, seed=0), tiny.spell_rows(100, seed=0)
    em = {step: _exact_match(result.checkpoints[step], add) for step in (100, 300)}
    acc = {step: _accuracy(result.checkpoints[step], mc) for step in (100, 300)}
    spelled = {step: _spelled_chrf(result.checkpoints[step], words) for step in (100, 300)}
    chat = {step: _chat_exact_match(result.checkpoints[step], add[:100]) for step in (100, 300)}
    assert em[300] >= em[100] + 0.25, em
    assert acc[300] >= acc[100] + 0.15, acc
    assert spelled[300] >= spelled[100] + 20, spelled  # chrF points
    assert chat[300] >= chat[100] + 0.1, chat  # it answers in its chat template too
