"""The scheduler that lives on the cluster (ClusterExecutor), against a real ``ray start --head`` on
loopback: an experiment handed to it outlives the process that submitted it (``evalhub run`` SIGKILLed
once a run has completed), another process reattaches and sees it, ``--detach`` returns at once,
``evalhub cancel`` stops it and its scheduler ends; a worker asking more GPUs than any node has is
refused with the reason (the head declares one logical GPU), never a hang."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _raynodes import RayNode, clean_env, start_head, until

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def head() -> Iterator[RayNode]:
    node = start_head(num_cpus=2, extra=["--num-gpus", "1"])  # a logical GPU: Ray counts, nothing uses it
    yield node
    from evalhub.execution.connection import ray_connection

    ray_connection().shutdown()  # leave the cluster before it goes away
    node.stop()


@pytest.fixture
def project(hub: Any, tmp_path: Path) -> Any:
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=100)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "slow-a", "Slow", delay=0.25)
    register_plugin(hub, plugins, "slow-b", "Slow", delay=0.25)
    return hub


def _env(hub: Any, head: RayNode) -> dict[str, str]:
    return {
        **clean_env(),
        "EVALHUB_URL": hub.url,
        "EVALHUB_PROJECT": hub.project,
        "RAY_ADDRESS": head.address,
    }


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalhub.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)  # fmt: skip


def _spec(tmp_path: Path, limit: int) -> Path:
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        f"name: onc-{uuid.uuid4().hex[:6]}\nmodels: [{{model: slow-a}}, {{model: slow-b}}]\n"
        f"tasks: [arith-add]\nconfig: {{limit: {limit}, batch_size: 1, resources: {{max_workers: 1}}}}\n"
    )
    return spec


def _experiment_id(hub: Any, timeout: float = 240.0) -> int:
    frame = until("the experiment exists", lambda: hub.experiments().height > 0, timeout)
    assert frame
    return int(hub.experiments()["id"][0])


def test_the_experiment_outlives_a_sigkilled_evalhub_run(project: Any, head: RayNode, tmp_path: Path) -> None:
    # one worker at a time (max_workers: 1): the second run starts only after the first completed
    cli = subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli", "run", "--on-cluster", "--no-progress", str(_spec(tmp_path, 8))],
        env=_env(project, head), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        exp_id = _experiment_id(project)
        exp = project.experiment(exp_id)  # this process reattaches: it never ran the experiment
        until("a run completed", lambda: (exp.info().get("counts") or {}).get("completed", 0) >= 1)
        assert cli.poll() is None, cli.stdout.read() if cli.stdout else ""
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(timeout=30)
        assert cli.returncode == -signal.SIGKILL
        assert exp.info()["status"] in ("running", "queued")
    finally:
        if cli.poll() is None:
            cli.kill()
    # a second process attaches and follows it to the end
    result = _cli("attach", str(exp_id), "--no-progress", env=_env(project, head))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 completed" in result.stdout
    runs = project.runs(experiment_id=exp_id)
    assert set(runs["status"]) == {"completed"}
    for run_id in runs["id"]:
        assert project.samples(int(run_id)).height == 8


def test_detach_returns_at_once_and_cancel_stops_the_scheduler(
    project: Any, head: RayNode, tmp_path: Path
) -> None:
    from evalhub.execution.connection import RayOptions, ray_connection
    from evalhub.execution.scheduler import find_scheduler

    started = time.monotonic()
    result = _cli("run", "--detach", str(_spec(tmp_path, 40)), env=_env(project, head))
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"experiment (\d+) ", result.stdout)
    assert match, result.stdout
    exp_id = int(match.group(1))
    assert f"evalhub attach {exp_id}" in result.stdout
    # the command returned before the runs finished (40 prompts x 0.25 s each at the least)
    assert project.experiment(exp_id).info()["status"] in ("queued", "running"), time.monotonic() - started
    exp = project.experiment(exp_id)
    until("a run shows progress", lambda: (exp.info().get("progress") or {}).get("done", 0) >= 1)
    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        assert find_scheduler(project.url, project.project, exp_id) is not None
        cancelled = _cli("cancel", str(exp_id), env=_env(project, head))
        assert cancelled.returncode == 0, cancelled.stderr
        exp.wait(timeout=120)
        runs = project.runs(experiment_id=exp_id)
        assert set(runs["status"]) == {"cancelled"}, runs
        assert project.samples(int(runs["id"][0])).height < 40
        until(
            "the scheduler ended", lambda: find_scheduler(project.url, project.project, exp_id) is None, 120
        )


def test_more_gpus_than_any_node_has_is_refused_with_the_reason(project: Any, head: RayNode) -> None:
    from evalhub.errors import ClusterError
    from evalhub.execution import ClusterExecutor, RayExecutor

    spec = "name: {}\nmodels: [{{model: slow-a}}]\ntasks: [arith-add]\nconfig: {{resources: {{gpus_per_worker: 2}}}}\n"
    with pytest.raises(ClusterError, match=r"asks for 2 GPU\(s\).*has more than 1"):
        project.run_experiment(spec.format("gpus-cluster"), executor=ClusterExecutor(address=head.address))
    # the in-process driver: the runs fail with the reason (within a poll or two), never stay queued
    exp = project.run_experiment(
        spec.format("gpus-driver"), executor=RayExecutor(address=head.address), wait=False
    )
    exp.wait(timeout=90)
    for run in project.client.paged("/runs"):
        assert run["status"] == "failed" and "asks for 2 GPU(s)" in str(run["error"]), run
        assert "has more than 1" in str(run["error"])


COUNTING = '''
"""Answers arithmetic right, writing one line per prompt it is asked to a file: the adapter calls."""
import time


class Counting:
    def __init__(self, uri, params):
        self.delay = float(params.get("delay", 0.2))
        self.calls = params["calls"]
        self.tag = params["tag"]

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            time.sleep(self.delay)
            a, b = p.strip().rstrip("=").split("+")
            out.append(str(int(a) + int(b)))
            with open(self.calls, "a") as fh:
                fh.write(self.tag + "\\n")
        return out
'''


def _counting(hub: Any, folder: Path, name: str, calls: Path, delay: float) -> None:
    (folder / "evalhub_count_plugin.py").write_text(COUNTING)
    hub.register_model(name, family="plugins", runtime="python", code_uri=str(folder),
                       adapter="evalhub_count_plugin:Counting",
                       default_params={"delay": delay, "calls": str(calls), "tag": name})  # fmt: skip
    hub.register_checkpoint(name, "v1", uri=str(folder / "weights"), step=1)


def _calls(path: Path) -> dict[str, int]:
    lines = path.read_text().split() if path.exists() else []
    return {tag: lines.count(tag) for tag in set(lines)}


def test_resume_reruns_only_what_is_missing(project: Any, head: RayNode, tmp_path: Path) -> None:
    from evalhub.engines._cache import chunk_size
    from evalhub.execution import ClusterExecutor

    calls = tmp_path / "calls.txt"
    _counting(project, tmp_path / "plugins", "count-a", calls, delay=0.005)
    _counting(project, tmp_path / "plugins", "count-b", calls, delay=0.08)
    chunk = chunk_size(1)  # requests per adapter call, their answers stored in the server's cache after it
    limit = chunk + 36
    spec = (
        f"name: resume-{uuid.uuid4().hex[:6]}\nmodels: [{{model: count-a}}, {{model: count-b}}]\n"
        f"tasks: [arith-add]\nconfig: {{limit: {limit}, batch_size: 1, resources: {{max_workers: 1}}}}\n"
    )
    exp = project.run_experiment(spec, executor=ClusterExecutor(address=head.address, poll_interval=0.3),
                                 wait=False)  # fmt: skip
    by_model = {str(r["model"]): int(r["id"]) for r in project.client.paged(f"/experiments/{exp.id}/runs")}
    # count-a completes; count-b is cancelled once its first chunk is answered (and cached)
    until("count-b past its first chunk", lambda: _calls(calls).get("count-b", 0) >= chunk + 8)
    exp.cancel().wait(timeout=120)
    assert project.run(by_model["count-a"])["status"] == "completed"
    assert project.run(by_model["count-b"])["status"] == "cancelled"
    before = _calls(calls)
    assert before["count-a"] == limit, before
    # another process resumes it on the cluster, and waits for it
    result = _cli("resume", str(exp.id), "--on-cluster", "--no-progress", env=_env(project, head))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 completed" in result.stdout
    after = _calls(calls)
    assert after["count-a"] == limit, "the completed run was evaluated again"
    redone = after["count-b"] - before["count-b"]
    assert redone <= limit - chunk, f"the resumed run asked the model {redone} times: the cache was not used"
    b = project.run(by_model["count-b"])
    assert b["status"] == "completed" and b["attempt"] == 2
    for run_id in by_model.values():
        assert project.samples(run_id).height == limit  # every sample stored once


def _part_way_on_the_cluster(project: Any, head: RayNode, tmp_path: Path, model: str, calls: Path) -> Any:
    """A 12-sample run of a counting plugin handed to a scheduler on ``head``, once it is part-way:
    the experiment, the run's id and the scheduler's handle (call inside a session on ``head``)."""
    from evalhub.execution import ClusterExecutor
    from evalhub.execution.scheduler import find_scheduler

    _counting(project, tmp_path / "plugins", model, calls, delay=0.3)
    spec = (
        f"name: {model}-{uuid.uuid4().hex[:6]}\nmodels: [{{model: {model}}}]\n"
        "tasks: [arith-add]\nconfig: {limit: 12, batch_size: 1}\n"
    )
    exp = project.run_experiment(spec, executor=ClusterExecutor(address=head.address, poll_interval=0.3),
                                 wait=False)  # fmt: skip
    run_id = int(exp.runs()["id"][0])
    until("the run is part-way", lambda: (project.run(run_id).get("progress") or {}).get("done", 0) >= 2)
    scheduler = find_scheduler(project.url, project.project, exp.id)
    assert scheduler is not None
    return exp, run_id, scheduler


def test_a_killed_scheduler_is_restarted_by_ray_and_finishes(
    project: Any, head: RayNode, tmp_path: Path
) -> None:
    import ray

    from evalhub.execution.connection import RayOptions, ray_connection

    calls = tmp_path / "calls.txt"
    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        exp, run_id, scheduler = _part_way_on_the_cluster(project, head, tmp_path, "count-c", calls)
        first = ray.get(scheduler.ping.remote(), timeout=60)
        ray.kill(scheduler, no_restart=False)  # its process dies (its workers with it); Ray starts it again
        again = until("a new scheduler answers", lambda: _ping(scheduler, first["started"]), 180)
        assert again["experiment_id"] == exp.id
        exp.wait(timeout=240)
    run = project.run(run_id)
    assert run["status"] == "completed" and run["attempt"] == 2, run
    assert project.samples(run_id).height == 12
    assert _calls(calls)["count-c"] >= 12


def test_a_scheduler_gone_for_good_ends_the_wait_saying_how_to_resume(
    project: Any, head: RayNode, tmp_path: Path
) -> None:
    """The scheduler killed for good (as when its node dies or the cluster stops): a process waiting
    on the experiment stops waiting, naming how to resume; resuming on the cluster finishes it."""
    import ray

    from evalhub.errors import EvalhubError
    from evalhub.execution.connection import RayOptions, ray_connection

    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        exp, run_id, scheduler = _part_way_on_the_cluster(
            project, head, tmp_path, "count-e", tmp_path / "calls"
        )
        until(
            "the scheduler beats", lambda: (exp.info()["metadata"].get("evalhub_scheduler") or {}).get("beat")
        )
        ray.kill(scheduler, no_restart=True)  # gone, its workers with it, and nothing starts it again
    started = time.monotonic()
    with pytest.raises(
        EvalhubError, match=r"has not been heard from for 15s .*exp.resume\(\) or `evalhub resume \d+`"
    ):
        project.experiment(exp.id).wait(timeout=180, scheduler_timeout=15)  # another handle: a reattach
    assert time.monotonic() - started < 90
    env = _env(project, head)
    env.pop("EVALHUB_EXECUTOR", None)  # the default: on the cluster
    result = _cli("resume", str(exp.id), "--no-progress", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    run = project.run(run_id)
    assert run["status"] == "completed" and run["attempt"] == 2, run
    assert project.samples(run_id).height == 12


def _ping(actor: Any, started: float) -> dict[str, Any] | None:
    import ray

    try:
        answer = ray.get(actor.ping.remote(), timeout=10)
    except Exception:  # still restarting
        return None
    return answer if answer["started"] > started else None


def test_resume_in_this_process_with_the_ray_executor(project: Any, head: RayNode, tmp_path: Path) -> None:
    from evalhub.execution import RayExecutor
    from evalhub.orchestrator import plan, submit

    calls = tmp_path / "calls.txt"
    _counting(project, tmp_path / "plugins", "count-d", calls, delay=0.005)
    spec = f"name: local-{uuid.uuid4().hex[:6]}\nmodels: [{{model: count-d}}]\ntasks: [arith-add]\nconfig: {{limit: 10}}\n"
    experiment, _ = submit(project, plan(project, spec))  # submitted, never driven, then cancelled
    exp = project.experiment(int(experiment["id"])).cancel()
    assert exp.status() == "cancelled" and not calls.exists()
    exp.resume(RayExecutor(address=head.address, poll_interval=0.3), wait=True)  # driven from a thread here
    run = project.run(int(exp.runs()["id"][0]))
    assert run["status"] == "completed" and run["attempt"] == 2, run
    assert _calls(calls)["count-d"] == 10 and project.samples(int(run["id"])).height == 10


def test_a_schedule_runs_its_ticks_on_the_cluster_through_a_killed_keeper(
    project: Any, head: RayNode
) -> None:
    """``hub.schedule``: the keeper on the cluster runs each tick as an experiment that the cluster
    scheduler completes; its process killed, Ray restarts it and no tick runs twice; with the
    schedule gone, it ends itself."""
    import ray

    from evalhub.execution.cluster import NAMESPACE
    from evalhub.execution.connection import RayOptions, ray_connection
    from evalhub.execution.schedules import keeper_name

    name = f"every3-{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "models": [{"model": "slow-a"}], "tasks": ["arith-add"],
            "config": {"limit": 2, "batch_size": 1}}  # fmt: skip
    made = project.schedule(spec, every=3, ray_address=head.address)
    assert made["name"] == name

    def ticks() -> list[dict[str, Any]]:
        frame = project.experiments()
        return [e for e in frame.iter_rows(named=True) if str(e["name"]).startswith(f"{name} @ ")]

    until("a tick's experiment", lambda: len(ticks()) >= 1, timeout=120)
    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        keeper = ray.get_actor(keeper_name(project.url, project.project), namespace=NAMESPACE)
        ray.kill(keeper, no_restart=False)  # its process dies; Ray starts it again
        until("ticks after the restart", lambda: len(ticks()) >= 3, timeout=120)
        project.unschedule(name)
        state_after = len(ticks())

        def keeper_gone() -> bool:
            try:
                ray.get_actor(keeper_name(project.url, project.project), namespace=NAMESPACE)
            except ValueError:
                return True
            return False

        until("the keeper ended with no schedule left", keeper_gone, timeout=60)
    exps = ticks()
    assert len(exps) >= state_after >= 3
    assert len({e["name"] for e in exps}) == len(exps)  # one experiment per tick, never two
    for e in exps[:2]:
        exp = project.experiment(int(e["id"]))
        exp.wait(timeout=180)
        runs = project.runs(experiment_id=int(e["id"]))
        assert set(runs["status"]) == {"completed"}, runs


def test_schedule_keep_brings_the_keeper_back_and_a_missed_tick_runs_once(
    project: Any, head: RayNode
) -> None:
    """No keeper ran when the tick fell due (as after a reboot: the schedule made with keep=False):
    ``evalhub schedule keep`` starts one, the missed tick runs once, and not again."""
    name = f"missed-{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "models": [{"model": "slow-a"}], "tasks": ["arith-add"],
            "config": {"limit": 2, "batch_size": 1}}  # fmt: skip
    project.schedule(spec, every="1h", start_at=time.time() + 1, keep=False)
    time.sleep(2.0)  # the tick is due, and nobody keeps it
    assert not [e for e in project.experiments().iter_rows(named=True) if str(e["name"]).startswith(name)]
    kept = _cli("schedule", "keep", env=_env(project, head))
    assert kept.returncode == 0, kept.stderr
    assert "the keeper of 1 schedule(s) runs on" in kept.stdout, kept.stdout

    def ticks() -> list[dict[str, Any]]:
        return [
            e for e in project.experiments().iter_rows(named=True) if str(e["name"]).startswith(f"{name} @ ")
        ]

    [tick] = until("the missed tick's experiment", ticks, timeout=120)
    project.experiment(int(tick["id"])).wait(timeout=180)
    assert set(project.runs(experiment_id=int(tick["id"]))["status"]) == {"completed"}
    time.sleep(3.0)  # the keeper polls again: the tick it ran stays run
    assert len(ticks()) == 1
    again = _cli("schedule", "keep", env=_env(project, head))  # a second keep finds the keeper running
    assert again.returncode == 0 and len(ticks()) == 1, again.stderr
    project.unschedule(name)
    gone = _cli("schedule", "keep", env=_env(project, head))
    assert gone.returncode == 0 and "no schedules: nothing to keep" in gone.stdout, gone.stdout


def test_a_trigger_evaluates_each_new_checkpoint_on_the_cluster(project: Any, head: RayNode) -> None:
    """``hub.schedule(..., on_checkpoint=model)``: each checkpoint registered afterwards is evaluated
    by the keeper on the cluster, into one growing experiment; the one registered before is not."""
    weights = Path(project.checkpoint("slow-b", "v1")["uri"])
    trigger = project.schedule({"tasks": ["arith-add"], "config": {"limit": 2, "batch_size": 1}},
                               on_checkpoint="slow-b", name=f"on-ckpt-{uuid.uuid4().hex[:6]}",
                               ray_address=head.address)  # fmt: skip
    for name in ("v2", "v3"):
        project.register_checkpoint(model="slow-b", name=name, uri=str(weights))

    def done() -> bool:
        state = project.schedules_api.get(trigger["id"])
        return state["ticks_run"] == 2 and state["pending_tick"] is None

    until("both new checkpoints evaluated", done, timeout=180)
    exp_id = int(project.schedules_api.get(trigger["id"])["last_experiment_id"])
    project.unschedule(trigger["id"])
    project.experiment(exp_id).wait(timeout=180)
    runs = project.runs(experiment_id=exp_id)
    assert runs.height == 2 and set(runs["status"]) == {"completed"}, runs
    assert sorted(project.checkpoint(int(c))["name"] for c in runs["checkpoint_id"]) == ["v2", "v3"]


def test_the_scheduler_on_the_cluster_applies_the_specs_scorers(project: Any, head: RayNode) -> None:
    """A spec's ``scorers`` on a detached experiment: applied by its scheduler once the runs end (the
    submitting call applies nothing itself), and a call that waits returns with them recorded."""
    from evalhub.execution import ClusterExecutor

    spec = {"name": f"scored-{uuid.uuid4().hex[:6]}", "models": [{"model": "slow-a"}], "tasks": ["arith-add"],
            "config": {"limit": 3, "batch_size": 1},
            "scorers": [{"type": "exact_match", "name": "em"}, {"type": "regex", "pattern": r"^(\d+)$", "name": "num"}]}  # fmt: skip
    executor = ClusterExecutor(address=head.address)
    try:
        exp = project.run_experiment(spec, executor=executor, progress=False)
    finally:
        executor.shutdown()
    scorings = project.scorings(experiment_id=exp.id)
    assert sorted(scorings["name"].to_list()) == ["em", "num"]
    assert set(scorings["status"].to_list()) == {"completed"}
    table = exp.compare()
    assert table["em.exact_match"].to_list() == pytest.approx(table["exact_match"].to_list())
    beat = (exp.info().get("metadata") or {}).get("evalhub_scheduler") or {}
    assert beat.get("state") == "done"


@pytest.mark.parametrize("where", ["cluster", "process"])
def test_the_tracking_server_sigkilled_mid_experiment_loses_and_doubles_nothing(
    server: Any, head: RayNode, tmp_path: Path, where: str
) -> None:
    """The server SIGKILLed while the runs' driver (the cluster's scheduler, or the in-process driver of
    ``EVALHUB_EXECUTOR=process``) and workers report to it, started again on the same port and database
    8 s later: every run completes, every sample is stored once."""
    import evalhub
    from evalhub import tiny
    from evalhub.execution import ClusterExecutor, RayExecutor

    hub = evalhub.connect(server.url, project=f"k{uuid.uuid4().hex[:8]}")
    tiny.write_tasks(tmp_path, n=100)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    for name in ("slow-a", "slow-b"):
        register_plugin(hub, plugins, name, "Slow", delay=0.15)
    limit = 40
    spec = (
        f"name: server-kill\nmodels: [{{model: slow-a}}, {{model: slow-b}}]\ntasks: [arith-add]\n"
        f"config: {{limit: {limit}, batch_size: 2, resources: {{cpus_per_worker: 0.5}}}}\n"
    )
    executor = ClusterExecutor if where == "cluster" else RayExecutor
    exp = hub.run_experiment(spec, wait=False, executor=executor(address=head.address))
    run_ids = [int(r) for r in exp.runs()["id"]]

    def reporting() -> bool:
        return any((hub.run(r).get("progress") or {}).get("done", 0) >= 4 for r in run_ids)

    until("a run reports progress", reporting)
    server.stop(kill=True)
    time.sleep(8.0)
    server.start()
    assert exp.wait(timeout=400).status() == "completed", [(r["name"], r["error"]) for r in exp.failed_runs()]
    for run_id in run_ids:
        run = hub.run(run_id)
        assert run["status"] == "completed", run
        samples = hub.samples(run_id)
        assert samples.height == limit, (run_id, samples.height)
        assert samples["sample_key"].n_unique() == limit
        assert hub.metrics(run_id)["exact_match"] == pytest.approx(1.0), hub.metrics(run_id)


def test_checkpoints_logged_with_evaluate_grow_one_experiment_on_the_cluster(
    project: Any, head: RayNode, tmp_path: Path
) -> None:
    """``log_checkpoint(evaluate=)`` with the scheduler on the cluster: the checkpoints logged while the
    first is being evaluated are taken by that experiment's scheduler (in a round after its current one),
    nothing is driven from the training process, every checkpoint ends evaluated in one experiment."""
    from evalhub.execution import ClusterExecutor

    executor = ClusterExecutor(address=head.address)
    run = project.init_run("train-onc", model="slow-a", type="training", system_metrics=False)
    evaluate = {"tasks": ["arith-add"], "config": {"limit": 12, "batch_size": 2}}
    run.log({"loss": 1.0}, step=100)
    run.log_checkpoint(tmp_path / "plugins" / "weights", step=100, evaluate=evaluate, executor=executor)
    exp = run.evaluations
    assert exp is not None
    first = int(exp.runs()["id"][0])
    until("the first checkpoint is being evaluated",
           lambda: (project.run(first).get("progress") or {}).get("done", 0) >= 2)  # fmt: skip
    for step in (200, 300):  # while the scheduler is in its round: it takes them
        run.log({"loss": 100.0 / step}, step=step)
        run.log_checkpoint(tmp_path / "plugins" / "weights", step=step, evaluate=evaluate, executor=executor)
    assert run.evaluations is not None and run.evaluations.id == exp.id
    assert all(not evals.threads for evals in run._evaluations.values())  # nothing runs in this process
    run.finish()
    exp.wait(timeout=300)
    table = exp.compare().sort("step")
    assert table["checkpoint"].to_list() == ["step-100", "step-200", "step-300"]
    assert set(table["status"]) == {"completed"}, table
    for run_id in table["run_id"]:
        assert project.samples(run_id).height == 12
    exp.wait_scheduler(timeout=120)  # and its scheduler ends (no round is left)
    assert exp.info()["metadata"]["evalhub_scheduler"]["state"] == "done"
