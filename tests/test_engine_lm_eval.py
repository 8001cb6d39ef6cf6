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


def _direct(build: Any, task: dict[str, Any], tmp_path: Path, step: int = 300) -> dict[str, Any]:
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
        log_samples=True,
        task_manager=TaskManager(include_path=str(path.parent), include_defaults=False),
        fewshot_as_multiturn=False,
        random_seed=1234,
        numpy_random_seed=1234,
        torch_random_seed=1234,
        fewshot_random_seed=1234,
        bootstrap_iters=1000,
    )
    assert answer is not None
    return answer


@pytest.mark.parametrize("task_name", ["arith-add", "arith-mc"])
def test_evalhub_and_lm_eval_agree_on_metrics_and_every_sample(
    build: Any, task_name: str, tmp_path: Path
) -> None:
    from evalhub.engines.lm_eval import evaluate, summary_metrics

    task = _task(task_name, build)
    ours = evaluate(_hf(build), task, limit=LIMIT, seed=1234, batch_size=8, workdir=tmp_path / "ours")
    theirs = _direct(build, task, tmp_path / "theirs")
    assert ours.metrics == pytest.approx(summary_metrics(theirs["results"][task_name]), abs=1e-9)
    direct = {s["doc_id"]: s for s in theirs["samples"][task_name]}
    assert len(ours.samples) == len(direct) == LIMIT
    for sample in ours.samples:
        raw = direct[sample["index"]]
        assert sample["sample_key"].split("#")[0] == raw["doc_hash"]
        if task_name == "arith-add":
            assert sample["output"] == raw["resps"][0][0]
            assert sample["filtered_output"] == raw["filtered_resps"][0]
        else:
            lls = [r[0] for r in raw["filtered_resps"]]
            assert sample["extra"]["loglikelihoods"] == pytest.approx(lls, abs=1e-4)
        first_metric = task["engine_config"]["metric_list"][0]["metric"]
        assert sample["scores"][first_metric] == raw[first_metric]
        assert sample["primary_score"] == raw[first_metric]


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
