"""From spec to runs against a real server: name resolution with suggestions, expansion, one-POST
submission; then whole experiments on a real local Ray with the real lm-eval."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, register_tiny, tiny_build, write_plugins

from evalhub.errors import SpecError
from evalhub.orchestrator import plan, run_experiment, submit


def _spec(models: str = "[{model: tiny-gpt, checkpoints: [step-100, step-200, step-300]}]",
          tasks: str = "[arith-add, arith-mc]", config: str = "{limit: 20, batch_size: 8}") -> str:  # fmt: skip
    return f"name: exp-{uuid.uuid4().hex[:6]}\nmodels: {models}\ntasks: {tasks}\nconfig: {config}\n"


@pytest.fixture
def registered(hub: Any, tmp_path: Path) -> Any:
    """tiny-gpt with three checkpoints (metadata only: no weights are needed to plan) and its tasks."""
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=20)
    hub.register_family("tiny-gpt", modality="llm")
    hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
    for step in (100, 200, 300):
        hub.register_checkpoint("tiny-gpt", f"step-{step}", uri=str(tmp_path / f"step-{step}"), step=step)
    tiny.register_tasks(hub, tmp_path)
    return hub


# -- resolution, before any run exists ---------------------------------------------------------------


def test_unknown_model_is_refused_with_the_closest_name_and_its_line(registered: Any) -> None:
    with pytest.raises(SpecError) as err:
        plan(registered, _spec(models="\n  - model: tiny-gtp\n    checkpoints: all"))
    assert "did you mean 'tiny-gpt'" in str(err.value)
    assert err.value.field == "models[0].model" and err.value.line == 3
    assert registered.experiments().height == 0


def test_spec_params_override_the_models_default_params_per_run(registered: Any) -> None:
    registered.register_model(
        "tiny-served", family="tiny-gpt", runtime="openai", default_params={"model": "a", "mode": "completions"}
    )
    registered.register_checkpoint("tiny-served", "step-300", uri="unused", step=300)
    models = "[{model: tiny-served, checkpoints: all, params: {model: b, base_url: 'http://127.0.0.1:9/v1'}}]"
    the_plan = plan(registered, _spec(models=models, tasks="[arith-add]"))
    (run,) = the_plan.runs
    assert run.checkpoint_ref().params == {"model": "b", "mode": "completions", "base_url": "http://127.0.0.1:9/v1"}
    assert run.run_create()["tags"]["params"]["base_url"] == "http://127.0.0.1:9/v1"


def test_unknown_checkpoint_is_refused_with_suggestions(registered: Any) -> None:
    with pytest.raises(SpecError) as err:
        plan(registered, _spec(models="[{model: tiny-gpt, checkpoints: [step-100, step-30]}]"))
    assert "unknown checkpoint of model 'tiny-gpt' 'step-30'" in str(err.value)
    assert "step-300" in str(err.value)
    assert err.value.field == "models[0].checkpoints[1]"


def test_unknown_task_is_refused_with_a_suggestion_and_how_to_add_an_lm_eval_task(registered: Any) -> None:
    with pytest.raises(SpecError) as err:
        plan(registered, _spec(tasks="[arith-add, arith-mcq]"))
    assert "did you mean 'arith-mc'" in str(err.value)
    assert "lm_eval_task=" in str(err.value)
    assert err.value.field == "tasks[1]" and err.value.line == 3


def test_unknown_benchmark_and_runtime_are_refused(registered: Any) -> None:
    text = "name: b\nmodels: [{model: tiny-gpt}]\nbenchmark: arithm\n"
    with pytest.raises(SpecError, match="did you mean 'arith'"):
        plan(registered, text)
    with pytest.raises(SpecError, match="unknown runtime 'hff'; did you mean 'hf'"):
        plan(registered, _spec(models="[{model: tiny-gpt, runtimes: [hff]}]"))


def test_the_product_of_checkpoints_runtimes_and_tasks(registered: Any) -> None:
    the_plan = plan(registered, _spec(models="[{model: tiny-gpt, checkpoints: all, runtimes: [hf, openai]}]"))
    assert len(the_plan.runs) == 3 * 2 * 2
    names = {r.name for r in the_plan.runs}
    assert "tiny-gpt/step-200/openai/arith-mc" in names
    ref = next(r for r in the_plan.runs if r.name == "tiny-gpt/step-200/openai/arith-mc").checkpoint_ref()
    assert (ref.runtime, ref.step, ref.uri.endswith("step-200")) == ("openai", 200, True)


def test_a_benchmark_brings_its_tasks_and_its_config_as_defaults(registered: Any) -> None:
    registered.register_benchmark("quick", ["arith-add"], config={"limit": 5, "batch_size": 4, "seed": 9})
    text = "name: b\nmodels: [{model: tiny-gpt, checkpoints: [step-100]}]\nbenchmark: quick\nconfig: {batch_size: 2}\n"
    the_plan = plan(registered, text)
    assert [r.task["name"] for r in the_plan.runs] == ["arith-add"]
    assert the_plan.config.limit == 5 and the_plan.config.seed == 9
    assert the_plan.config.batch_size == 2  # the spec wins


def test_one_submission_per_client_key(registered: Any) -> None:
    the_plan = plan(registered, _spec())
    first, jobs = submit(registered, the_plan, client_key="key-1")
    again, jobs_again = submit(registered, the_plan, client_key="key-1")
    assert first["id"] == again["id"]
    assert len(jobs) == len(jobs_again) == 6
    assert registered.experiments().height == 1
    assert registered.runs(experiment_id=first["id"]).height == 6


def test_run_config_and_provenance_settings_are_stored_on_each_run(registered: Any) -> None:
    experiment, _ = submit(registered, plan(registered, _spec(config="{limit: 7, seed: 3}")))
    run = registered.run(experiment["runs"][0]["id"])
    assert run["config"]["limit"] == 7 and run["config"]["seed"] == 3
    assert run["config"]["apply_chat_template"] is False and run["config"]["fewshot_as_multiturn"] is False
    assert run["status"] == "queued" and run["type"] == "offline_eval"


def test_runs_end_failed_not_queued_when_the_driver_stops(registered: Any) -> None:
    from evalhub.errors import EvalhubError

    class LostCluster:
        """An executor whose cluster went away: what the driver thread sees then."""

        def execute(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the Ray cluster went away")

    exp = run_experiment(registered, _spec(), wait=False, executor=LostCluster())
    with pytest.raises(EvalhubError, match="cluster went away"):
        exp.wait(timeout=60)
    runs = [registered.run(i) for i in exp.runs()["id"]]
    assert {r["status"] for r in runs} == {"failed"}
    assert all("the driver stopped" in r["error"] for r in runs)


# -- whole experiments on a real local Ray ---------------------------------------------------------


@pytest.fixture(scope="module")
def executor() -> Iterator[Any]:
    from evalhub.execution import RayExecutor

    ex = RayExecutor(include_dashboard=False, num_cpus=2, poll_interval=0.5, start_nice=-19)
    ex.start()
    yield ex
    ex.shutdown()


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_build(tmp_path_factory.mktemp("tiny"))


@pytest.mark.ray
@pytest.mark.slow
def test_three_checkpoints_on_two_tasks_complete_with_scores_rising(
    hub: Any, build: Any, executor: Any
) -> None:
    register_tiny(hub, build)
    exp = run_experiment(hub, _spec(config="{limit: 40, batch_size: 16}"), executor=executor, progress=False)
    assert exp.status() == "completed"
    table = exp.compare().sort("step")
    assert table.height == 6 and set(table["status"]) == {"completed"}
    add = table.filter(table["task"] == "arith-add")["exact_match"].to_list()
    mc = table.filter(table["task"] == "arith-mc")["acc"].to_list()
    totals = [a + m for a, m in zip(add, mc, strict=True)]
    assert totals[0] < totals[1] < totals[2], (add, mc)
    for run_id in table["run_id"]:
        samples = hub.samples(run_id)
        assert samples.height == 40 and samples["sample_key"].n_unique() == 40
        metrics = hub.metrics(run_id)
        assert {"latency_p50_ms", "latency_p95_ms", "samples_per_s"} <= set(metrics)
        run = hub.run(run_id)
        assert run["worker"]["pid"] > 0 and run["attempt"] == 1
        assert run["progress"]["done"] == run["progress"]["total"] > 0
    aligned = exp.samples(task="arith-add")
    assert aligned.height == 40 and len([c for c in aligned.columns if c.endswith(":score")]) == 3
    # a worker hosts one checkpoint (a checkpoint's tasks may spread over replicas of its worker)
    runs = exp.runs()
    hosts = {}
    for ckpt in ("step-100", "step-200", "step-300"):
        for pid in {hub.run(i)["worker"]["pid"] for i in runs.filter(runs["checkpoint"] == ckpt)["id"]}:
            assert hosts.setdefault(pid, ckpt) == ckpt, f"worker {pid} hosted {hosts[pid]} and {ckpt}"


@pytest.mark.ray
@pytest.mark.slow
def test_load_failures_fail_their_runs_only(hub: Any, build: Any, executor: Any, tmp_path: Path) -> None:
    register_tiny(hub, build)
    hub.register_checkpoint("tiny-gpt", "step-gone", uri=str(tmp_path / "no-such-folder"), step=400)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "broken", "BrokenLoad")
    register_plugin(hub, plugins, "short", "ShortAnswers")
    models = (
        "\n  - {model: tiny-gpt, checkpoints: [step-300, step-gone]}"
        "\n  - {model: broken, checkpoints: [v1]}"
        "\n  - {model: short, checkpoints: [v1]}"
    )
    exp = run_experiment(
        hub, _spec(models=models, tasks="[arith-add]", config="{limit: 6}"), executor=executor, progress=False
    )
    runs = {r["name"]: r for r in (hub.run(i) for i in exp.runs()["id"])}
    assert runs["tiny-gpt/step-300/hf/arith-add"]["status"] == "completed"
    gone = runs["tiny-gpt/step-gone/hf/arith-add"]
    assert gone["status"] == "failed" and "no-such-folder" in gone["error"]
    broken = runs["broken/v1/python/arith-add"]
    assert broken["status"] == "failed" and "refuses to load" in broken["error"]
    short = runs["short/v1/python/arith-add"]
    assert short["status"] == "failed" and "outputs for" in short["error"]
    assert exp.status() == "failed"


@pytest.mark.ray
@pytest.mark.slow
def test_a_runtime_env_that_cannot_be_built_fails_its_runs_with_the_reason(
    hub: Any, build: Any, executor: Any
) -> None:
    """Ray takes the runtime_env (it is a valid one) but cannot build it on the node (no conda here):
    the runs fail naming it, within a minute, and nothing is left queued or running."""
    register_tiny(hub, build)
    config = "{limit: 6, runtime_env: {conda: evalhub-no-such-env}}"
    exp = run_experiment(hub, _spec(tasks="[arith-add]", config=config), wait=False, executor=executor,
                         progress=False)  # fmt: skip
    exp.wait(timeout=120)
    runs = [hub.run(i) for i in exp.runs()["id"]]
    assert len(runs) == 3 and {r["status"] for r in runs} == {"failed"}
    assert all("runtime_env could not be built" in r["error"] and "conda" in r["error"].lower() for r in runs)
