"""The lm-eval bridge over a real adapter and the real lm-evaluation-harness (no server, no Ray)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _evalsetup import tiny_build

from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams
from evalhub.errors import AdapterError, EvalhubError

pytestmark = pytest.mark.slow
LIMIT = 24


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_build(tmp_path_factory.mktemp("tiny"))


def _task(name: str, build: Any) -> dict[str, Any]:
    """The registry row a worker receives, built by the same code hub.register_task uses."""
    from evalhub import _taskdata

    if name == "arith-add":
        config = _taskdata.task_config(
            name,
            build.tasks[name],
            prompt="{{question}}",
            target="{{answer}}",
            generation={"until": ["\n"], "max_gen_toks": 8, "do_sample": False},
        )
    elif name == "arith-spell":
        config = _taskdata.task_config(
            name,
            build.tasks[name],
            prompt="{{question}}",
            target="{{answer}}",
            metrics=["bleu", "chrf", "rouge1", "rougeL"],
            generation={"until": ["\n"], "max_gen_toks": 12, "do_sample": False},
        )
    else:
        config = _taskdata.task_config(
            name,
            build.tasks[name],
            prompt="{{question}}",
            target="{{gold}}",
            choices="{{choices}}",
            output_type="multiple_choice",
        )
    config.pop("_table")
    return {"name": name, "engine": "lm_eval", "engine_config": config}


def _hf(build: Any, step: int = 300) -> Adapter:
    from evalhub.adapters import load_adapter

    return load_adapter(CheckpointRef("tiny-gpt", f"step-{step}", str(build.checkpoints[step]), "hf"))


def _direct(
    build: Any, task: dict[str, Any], tmp_path: Path, step: int = 300, batch_size: int = 1, **chat: Any
) -> dict[str, Any]:
    """lm-eval on its own: model="hf" on the same folder, the same task YAML, the same seeds."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from evalhub.engines.lm_eval import write_task_yaml

    path = write_task_yaml(task["engine_config"], tmp_path)
    answer = simple_evaluate(
        model="hf",
        model_args=f"pretrained={build.checkpoints[step]},device=cpu",
        tasks=[task["name"]],
        limit=LIMIT,
        batch_size=batch_size,
        log_samples=True,
        task_manager=TaskManager(include_path=str(path.parent), include_defaults=False),
        apply_chat_template=chat.get("apply_chat_template", False),
        system_instruction=chat.get("system_instruction"),
        fewshot_as_multiturn=chat.get("fewshot_as_multiturn", False),
        random_seed=1234,
        numpy_random_seed=1234,
        torch_random_seed=1234,
        fewshot_random_seed=1234,
        bootstrap_iters=1000,
    )
    assert answer is not None
    return answer


CHAT = {"apply_chat_template": True, "system_instruction": "Add the numbers.", "fewshot_as_multiturn": True}


@pytest.mark.parametrize("chat", [{}, CHAT], ids=["plain", "chat-template"])
@pytest.mark.parametrize("task_name", ["arith-add", "arith-mc"])
def test_evalhub_and_lm_eval_agree_on_metrics_and_every_sample(
    build: Any, task_name: str, chat: dict[str, Any], tmp_path: Path
) -> None:
    from evalhub.engines.lm_eval import evaluate, summary_metrics

    task = _task(task_name, build)
    fewshot = {"num_fewshot": 2} if chat else {}
    if chat:
        task["engine_config"]["num_fewshot"] = 2  # multi-turn few-shot: the examples become chat turns
    ours = evaluate(
        _hf(build), task, limit=LIMIT, seed=1234, batch_size=8, workdir=tmp_path / "ours", **chat, **fewshot
    )
    theirs = _direct(build, task, tmp_path / "theirs", batch_size=8, **chat)
    assert ours.metrics == pytest.approx(summary_metrics(theirs["results"][task_name]), abs=1e-9)
    direct = {s["doc_id"]: s for s in theirs["samples"][task_name]}
    assert len(ours.samples) == len(direct) == LIMIT
    for sample in ours.samples:
        raw = direct[sample["index"]]
        assert sample["sample_key"].split("#")[0] == raw["doc_hash"]
        assert sample["task"] == task_name
        assert sample["prompt"] == raw["arguments"][0][0]
        if task_name == "arith-add":
            assert sample["output"] == raw["resps"][0][0]
            assert sample["filtered_output"] == raw["filtered_resps"][0]
        else:
            lls = [r[0] for r in raw["filtered_resps"]]
            assert sample["extra"]["loglikelihoods"] == pytest.approx(lls, abs=1e-4)
        first_metric = task["engine_config"]["metric_list"][0]["metric"]
        assert sample["scores"][first_metric] == raw[first_metric]
        assert sample["primary_score"] == raw[first_metric]
    if chat:  # the prompts really went through the tokenizer's template, with the system message
        assert all(s["prompt"].startswith("<|bos|><|system|>Add the numbers.<|end|>") for s in ours.samples)
        prov = ours.provenance
        assert prov["apply_chat_template"] is True and prov["fewshot_as_multiturn"] is True
        assert prov["system_instruction"] == "Add the numbers." and prov["chat"]["via"] == "render"
        assert len(prov["chat"]["template_sha256"]) == 64 and prov["num_fewshot"] == 2


def test_bleu_chrf_and_rouge_equal_lm_eval_and_rise_with_training(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate, summary_metrics

    task = _task("arith-spell", build)
    ours = {
        step: evaluate(_hf(build, step), task, limit=LIMIT, batch_size=8, workdir=tmp_path / f"ours-{step}")
        for step in (100, 300)
    }
    theirs = _direct(build, task, tmp_path / "theirs", batch_size=8)
    assert ours[300].metrics == pytest.approx(summary_metrics(theirs["results"]["arith-spell"]), abs=1e-9)
    for metric in ("bleu", "chrf", "rouge1", "rougeL"):
        assert ours[300].metrics[metric] > ours[100].metrics[metric], metric
        assert ours[300].higher_is_better[metric] is True
    direct = {s["doc_id"]: s for s in theirs["samples"]["arith-spell"]}
    for sample in ours[
        300
    ].samples:  # ROUGE is per sample; BLEU and chrF are corpus-level (no per-sample score)
        assert sample["scores"] == {
            "rouge1": direct[sample["index"]]["rouge1"],
            "rougeL": direct[sample["index"]]["rougeL"],
        }


def test_results_carry_performance_and_provenance(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    seen: list[tuple[int, int]] = []
    result = evaluate(
        _hf(build),
        _task("arith-add", build),
        limit=10,
        seed=7,
        batch_size=4,
        on_progress=lambda done, total: seen.append((done, total)),
        workdir=tmp_path,
    )
    assert seen[0] == (0, 10) and seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= 3 + 1  # batches of 4: 4, 8, 10 after the start
    for key in ("latency_p50_ms", "latency_p95_ms", "samples_per_s", "tokens_per_s", "peak_rss_mb"):
        assert result.perf[key] > 0, key
    assert result.perf["latency_p95_ms"] >= result.perf["latency_p50_ms"]
    prov = result.provenance
    assert prov["lm_eval_version"] and prov["task_version"] == 1 and len(prov["task_hash"]) == 64
    assert prov["seeds"] == {"random": 7, "numpy": 7, "torch": 7, "fewshot": 7}
    assert prov["batch_size"] == 4 and prov["apply_chat_template"] is False
    assert prov["fewshot_as_multiturn"] is False and prov["num_fewshot"] == 0
    sample = result.samples[0]
    assert sample["latency_ms"] > 0 and sample["tokens_in"] > 0
    assert set(sample) >= {"sample_key", "index", "prompt", "reference", "output", "scores"}
    assert all(math.isfinite(v) for v in result.all_metrics.values())


def test_a_generation_override_reaches_the_adapter(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    class Recorder(Adapter):
        runtime = "test"
        params: ClassVar[list[GenerationParams]] = []

        def load(self, checkpoint: CheckpointRef) -> None:
            pass

        def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
            self.params.append(params)
            return [Generation("1") for _ in prompts]

    adapter = Recorder()
    evaluate(
        adapter,
        _task("arith-add", build),
        limit=3,
        generation={"max_gen_toks": 3, "until": ["="]},
        workdir=tmp_path,
    )
    assert adapter.params and all(p.max_new_tokens == 3 and p.until == ("=",) for p in adapter.params)


def test_an_adapter_with_the_wrong_number_of_outputs_is_an_error(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    class Short(Adapter):
        runtime = "test"

        def load(self, checkpoint: CheckpointRef) -> None:
            pass

        def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
            return [Generation("1") for _ in prompts[1:]]

    with pytest.raises(AdapterError, match=r"returned 3 outputs for 4 inputs"):
        evaluate(Short(), _task("arith-add", build), limit=4, batch_size=4, workdir=tmp_path)


def test_a_progress_callback_can_stop_the_evaluation(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import EvalCancelled, evaluate

    def stop_after_first(done: int, total: int) -> None:
        if done >= 2:
            raise EvalCancelled("cancelled")

    with pytest.raises(EvalCancelled):
        evaluate(_hf(build), _task("arith-add", build), limit=8, batch_size=2,
                 on_progress=stop_after_first, workdir=tmp_path)  # fmt: skip


def test_a_missing_data_file_is_named(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    task = _task("arith-add", build)
    task["engine_config"]["dataset_kwargs"] = {"data_files": {"test": str(tmp_path / "gone.jsonl")}}
    with pytest.raises(EvalhubError, match=r"gone.jsonl .*missing"):
        evaluate(_hf(build), task, limit=2, workdir=tmp_path)


def test_a_data_file_missing_a_templated_column_is_named(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    data = tmp_path / "no-answer.jsonl"
    data.write_text('{"question": "1+1= "}\n{"question": "2+2= "}\n')
    task = _task("arith-add", build)
    task["engine_config"]["dataset_kwargs"] = {"data_files": {"test": str(data)}}
    with pytest.raises(EvalhubError, match=r"column.*'answer' is undefined"):
        evaluate(_hf(build), task, limit=2, workdir=tmp_path)


def test_metric_names_drop_the_none_filter_and_keep_others() -> None:
    from evalhub.engines.lm_eval import metric_name, summary_metrics

    assert metric_name("exact_match,none") == "exact_match"
    assert metric_name("exact_match,strict-match") == "exact_match/strict-match"
    assert summary_metrics(
        {"alias": "x", "acc,none": 0.5, "acc_stderr,none": "N/A", "acc_norm,none": 1, "sample_len": 3}
    ) == {"acc": 0.5, "acc_norm": 1.0}


def test_identical_items_keep_one_sample_each(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    data = tmp_path / "dupes.jsonl"
    data.write_text('{"question": "1+1= ", "answer": "2"}\n' * 3 + '{"question": "2+2= ", "answer": "4"}\n')
    task = _task("arith-add", build)
    task["engine_config"]["dataset_kwargs"] = {"data_files": {"test": str(data)}}
    result = evaluate(_hf(build), task, workdir=tmp_path)
    keys = [s["sample_key"] for s in sorted(result.samples, key=lambda s: s["index"])]
    assert len(set(keys)) == 4
    assert keys[1] == keys[0] + "#2" and keys[2] == keys[0] + "#3"


CHAT_PLUGIN = '''
import json


class Messages:
    """Takes chats as messages; answers each with the JSON of what it got."""

    takes_messages = True

    def __init__(self, uri, params):
        pass

    def generate(self, prompts, params):
        return [json.dumps(p) for p in prompts]


class Renders:
    """Renders chats itself, then answers the last line of the rendered prompt."""

    def __init__(self, uri, params):
        pass

    def apply_chat_template(self, messages, add_generation_prompt=True):
        return "".join(f"[{m['role']}] {m['content']}\\n" for m in messages) + ("[assistant]" if add_generation_prompt else "")

    def generate(self, prompts, params):
        return ["2" for p in prompts]

    def loglikelihood(self, requests):
        return [(-1.0, True) for _ in requests]


class Plain:
    def __init__(self, uri, params):
        pass

    def generate(self, prompts, params):
        return ["2" for p in prompts]
'''


def _plugin(tmp_path: Path, cls: str) -> Adapter:
    from evalhub.adapters import load_adapter

    (tmp_path / "chat_plugins.py").write_text(CHAT_PLUGIN)
    return load_adapter(
        CheckpointRef(
            "p", "v1", str(tmp_path), "python", adapter=f"chat_plugins:{cls}", code_uri=str(tmp_path)
        )
    )


def test_a_plugin_that_takes_messages_gets_the_chat_and_the_system_instruction(
    build: Any, tmp_path: Path
) -> None:
    import json

    from evalhub.engines.lm_eval import evaluate

    result = evaluate(
        _plugin(tmp_path, "Messages"),
        _task("arith-add", build),
        limit=3,
        apply_chat_template=True,
        system_instruction="Add.",
        generation={"until": ["\n\n"]},
        workdir=tmp_path / "w",
    )
    for sample in result.samples:
        messages = json.loads(sample["output"])
        assert messages[0] == {"role": "system", "content": "Add."}
        assert messages[-1]["role"] == "user" and "=" in messages[-1]["content"]
        assert json.loads(sample["prompt"]) == messages  # the chat as the prompt of the sample
    assert result.provenance["chat"] == {"via": "messages", "template_sha256": None}
    assert "tokens_per_s" not in result.perf  # the plugin reports no token counts: no rate is made up
    assert all("tokens_in" not in s for s in result.samples)


def test_a_plugin_that_renders_chats_scores_likelihood_tasks_with_them(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    result = evaluate(
        _plugin(tmp_path, "Renders"),
        _task("arith-mc", build),
        limit=2,
        apply_chat_template=True,
        workdir=tmp_path / "w",
    )
    assert all(
        s["prompt"].startswith("[user] ") and s["prompt"].endswith("[assistant]") for s in result.samples
    )
    assert result.provenance["chat"]["via"] == "render"


def test_a_plugin_without_chats_is_refused_before_any_request(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    adapter = _plugin(tmp_path, "Plain")
    with pytest.raises(AdapterError, match=r"python adapter of p/v1 takes no chats; set it to false"):
        evaluate(
            adapter, _task("arith-add", build), limit=2, apply_chat_template=True, workdir=tmp_path / "w"
        )
    assert adapter.stats.requests == 0


def test_openai_chats_equal_the_hf_chat_template_and_likelihood_chats_are_refused(
    build: Any, tmp_path: Path
) -> None:
    from evalhub.adapters import load_adapter
    from evalhub.engines.lm_eval import evaluate
    from evalhub.serve_openai import start

    backend = _hf(build)
    task = _task("arith-add", build)
    with start(backend, "tiny-gpt") as running:
        ref = CheckpointRef(
            "tiny-gpt", "step-300", str(build.checkpoints[300]), "openai", params={"base_url": running.url}
        )
        served = evaluate(load_adapter(ref), task, limit=6, apply_chat_template=True, workdir=tmp_path / "a")
        with pytest.raises(AdapterError, match="chat endpoint scores no given text"):
            evaluate(
                load_adapter(ref),
                _task("arith-mc", build),
                limit=2,
                apply_chat_template=True,
                workdir=tmp_path / "b",
            )
    local = evaluate(_hf(build), task, limit=6, apply_chat_template=True, workdir=tmp_path / "c")
    assert [s["output"] for s in served.samples] == [s["output"] for s in local.samples]
    assert served.metrics == local.metrics
    assert served.provenance["chat"]["via"] == "messages" and local.provenance["chat"]["via"] == "render"


def test_a_tokenizer_without_a_chat_template_is_refused_at_load(build: Any, tmp_path: Path) -> None:
    import json

    from evalhub.adapters import load_adapter
    from evalhub.engines.lm_eval import evaluate

    folder = tmp_path / "nochat"
    folder.mkdir()
    for item in Path(build.checkpoints[300]).iterdir():
        if item.name != "chat_template.jinja":
            (folder / item.name).write_bytes(item.read_bytes())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    adapter = load_adapter(CheckpointRef("tiny-gpt", "nochat", str(folder), "hf"))
    with pytest.raises(
        AdapterError, match=r"tokenizer of tiny-gpt/nochat has no chat template; set it to false"
    ):
        evaluate(
            adapter, _task("arith-add", build), limit=2, apply_chat_template=True, workdir=tmp_path / "w"
        )


def test_peak_memory_is_sampled_per_run_and_latencies_are_per_request(build: Any, tmp_path: Path) -> None:
    from evalhub.engines.lm_eval import evaluate

    adapter = _hf(build)
    result = evaluate(adapter, _task("arith-mc", build), limit=8, batch_size=4, workdir=tmp_path)
    perf = result.perf
    assert perf["peak_rss_mb"] > 50 and "peak_gpu_mem_mb" not in perf  # CPU: resident memory sampled
    assert perf["latency_p50_ms"] <= perf["latency_p95_ms"] <= perf["latency_p99_ms"]
    assert "tokens_per_s" not in perf  # a likelihood task generates no tokens
    assert result.provenance["batch_size"] == adapter.batch_size == 4
    # every request of a batch took that batch's whole forward pass: no latency is a share of another
    assert len(adapter.stats.latencies_ms) == 8 * 4
    assert len(set(adapter.stats.latencies_ms)) < len(adapter.stats.latencies_ms)
