"""lm-eval's own built-in tasks through the bridge, checked against ``lm_eval.simple_evaluate(model="hf")``:
the ``mmlu`` group (4 subgroups, 57 subjects), an ``mmlu_*`` tag and ``gsm8k`` (two filters), with their
datasets written in the hub's layout and prepared into a datasets cache of the test's own, read offline;
a user's own task folder (a group over a local task and gsm8k); a dataset missing offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _hubdata import hub_home, mmlu_subjects, write_gsm8k, write_mmlu, write_task_folder
from _tinymodel import tiny_path

from evalhub.adapters import CheckpointRef, load_adapter
from evalhub.errors import EvalhubError

pytestmark = pytest.mark.slow
LIMIT = 2
BATCH = 8
GSM8K_GEN = {"max_gen_toks": 16}  # the tiny model's context is 256 tokens; gsm8k asks for 256 new ones


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hub")
    with hub_home(root / "hf") as home:
        write_mmlu(root / "repos", mmlu_subjects(), n=LIMIT)
        write_gsm8k(root / "repos", n_train=6, n_test=LIMIT + 1)
        yield home


@pytest.fixture(scope="module")
def task_manager(hf_home: Path) -> Any:
    """lm-eval's own task manager over all of its tasks, for the direct runs."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _ours(name: str, workdir: Path, **options: Any) -> Any:
    from evalhub.engines.lm_eval import evaluate

    adapter = load_adapter(CheckpointRef("tiny-gpt", "step-150", str(tiny_path()), "hf"))
    task = {"name": name, "engine": "lm_eval", "engine_config": {"task": name}}
    return evaluate(adapter, task, limit=LIMIT, seed=1234, batch_size=BATCH, workdir=workdir, **options)


def _theirs(name: str, task_manager: Any, gen_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    answer = simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_path()},device=cpu",
        tasks=[name],
        batch_size=BATCH,
        limit=LIMIT,
        log_samples=True,
        gen_kwargs=gen_kwargs,
        task_manager=task_manager,
        fewshot_as_multiturn=False,
        random_seed=1234,
        numpy_random_seed=1234,
        torch_random_seed=1234,
        fewshot_random_seed=1234,
        bootstrap_iters=1000,
    )
    assert answer is not None
    return answer


def _same_metrics(ours: Any, theirs: dict[str, Any], name: str) -> None:
    from evalhub.engines.lm_eval import summary_metrics

    expected: dict[str, float] = {}
    for part, entry in theirs["results"].items():
        expected.update(summary_metrics(entry, None if part == name else part))
    assert expected and ours.metrics == pytest.approx(expected, abs=1e-9)


def _same_samples(ours: Any, theirs: dict[str, Any]) -> None:
    from evalhub.metric_names import metric_key

    by_task: dict[str, dict[int, dict[str, Any]]] = {}
    for sample in ours.samples:
        by_task.setdefault(sample["task"], {})[sample["index"]] = sample
    assert set(by_task) == set(theirs["samples"])
    for task, raws in theirs["samples"].items():
        own = by_task[task]
        assert len(own) == len({r["doc_id"] for r in raws})
        for raw in raws:
            sample = own[raw["doc_id"]]
            assert sample["sample_key"].endswith(raw["doc_hash"])
            for metric in raw["metrics"]:
                assert sample["scores"][metric_key(metric, raw["filter"])] == raw[metric], (task, metric)
            if isinstance(raw["filtered_resps"][0], list | tuple):  # multiple choice: (ll, greedy) per choice
                lls = [r[0] for r in raw["filtered_resps"]]
                assert sample["extra"]["loglikelihoods"] == pytest.approx(lls, abs=1e-5)
            else:
                assert sample["output"] == raw["resps"][0][0]
                outputs = sample["extra"].get("filtered_outputs") or {
                    raw["filter"]: sample["filtered_output"]
                }
                assert outputs[raw["filter"]] == raw["filtered_resps"][0]


def test_the_mmlu_group_keeps_every_subgroup_and_subject(
    hf_home: Path, task_manager: Any, tmp_path: Path
) -> None:
    ours = _ours("mmlu", tmp_path)
    theirs = _theirs("mmlu", task_manager)
    _same_metrics(ours, theirs, "mmlu")
    _same_samples(ours, theirs)
    subjects = [t for t in theirs["configs"]]
    assert len(subjects) == 57 and len(ours.samples) == 57 * LIMIT
    for key in ("acc", "acc_stderr", "mmlu_stem:acc", "mmlu_humanities:acc_stderr", "mmlu_anatomy:acc"):
        assert key in ours.metrics, key
    keys = [s["sample_key"] for s in ours.samples]
    assert len(set(keys)) == len(keys) and all(
        k.startswith(s["task"] + "/") for k, s in zip(keys, ours.samples, strict=True)
    )
    prov = ours.provenance
    assert prov["kind"] == "group" and prov["task_version"] == theirs["versions"]["mmlu"]
    assert prov["output_type"] == "multiple_choice" and prov["num_fewshot"] == 0
    assert set(prov["subtasks"]) == set(subjects)
    assert prov["subtasks"]["mmlu_anatomy"]["dataset"] == {"path": "cais/mmlu", "name": "anatomy"}
    assert prov["groups"]["mmlu"]["subtasks"] == theirs["group_subtasks"]["mmlu"]
    assert prov["groups"]["mmlu"]["aggregation_text"] == "acc: mean weighted by subtask size"
    assert ours.higher_is_better["acc"] is True and ours.higher_is_better["mmlu_stem:acc"] is True
    assert ours.higher_is_better["latency_p95_ms"] is False and "acc_stderr" not in ours.higher_is_better
    assert ours.perf["samples_per_s"] > 0


def test_a_tag_is_evaluated_and_each_of_its_tasks_reported(
    hf_home: Path, task_manager: Any, tmp_path: Path
) -> None:
    ours = _ours("mmlu_stem_tasks", tmp_path)
    theirs = _theirs("mmlu_stem_tasks", task_manager)
    _same_metrics(ours, theirs, "mmlu_stem_tasks")
    _same_samples(ours, theirs)
    assert ours.provenance["kind"] == "tag" and "acc" not in ours.metrics  # lm-eval aggregates no tag
    assert len(ours.provenance["subtasks"]) == len(theirs["configs"]) > 10


def test_gsm8k_keeps_both_filters_with_their_stderr(hf_home: Path, task_manager: Any, tmp_path: Path) -> None:
    ours = _ours("gsm8k", tmp_path, generation=GSM8K_GEN)
    theirs = _theirs("gsm8k", task_manager, gen_kwargs=GSM8K_GEN)
    _same_metrics(ours, theirs, "gsm8k")
    _same_samples(ours, theirs)
    for key in ("exact_match/strict-match", "exact_match/flexible-extract"):
        assert key in ours.metrics and f"{key}_stderr" in ours.metrics
        assert ours.higher_is_better[key] is True
    assert not any("_stderr/" in key for key in ours.metrics)
    (sample, *_) = ours.samples
    assert set(sample["scores"]) == {"exact_match/strict-match", "exact_match/flexible-extract"}
    assert sample["primary_score"] == sample["scores"]["exact_match/strict-match"]
    assert ours.provenance["kind"] == "task" and ours.provenance["num_fewshot"] == 5
    keys = [s["sample_key"] for s in ours.samples]  # a single task: lm-eval's doc_hash, one per doc
    assert len(keys) == LIMIT and set(keys) == {r["doc_hash"] for r in theirs["samples"]["gsm8k"]}


def test_a_users_task_folder_with_a_group_over_its_own_task_and_gsm8k(hf_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "1+1= ", "answer": "2"}\n{"question": "12+7= ", "answer": "19"}\n')
    folder = write_task_folder(tmp_path / "my_tasks", data)
    ours = _ours("my_suite", tmp_path / "work", include_path=str(folder), generation=GSM8K_GEN)
    assert {s["task"] for s in ours.samples} == {"my_addition", "gsm8k"}
    assert "exact_match" in ours.metrics  # the group's aggregate
    assert "my_addition:exact_match" in ours.metrics and "gsm8k:exact_match/strict-match" in ours.metrics
    assert ours.provenance["include_path"] == str(folder)


def test_a_dataset_missing_offline_is_named_with_the_offline_variables(tmp_path: Path) -> None:
    with hub_home(tmp_path / "empty-hf"), pytest.raises(EvalhubError) as err:
        _ours("gsm8k", tmp_path, generation=GSM8K_GEN)
    message = str(err.value)
    assert "'openai/gsm8k' (config 'main')" in message and "subtask 'gsm8k'" in message
    assert "HF_DATASETS_OFFLINE=1" in message and f"HF_HOME={tmp_path / 'empty-hf'}" in message
