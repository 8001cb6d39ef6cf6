"""Worker death and cancellation on a real local Ray: a killed worker's run completes on attempt 2 with
no duplicate samples; a cancelled experiment drops queued runs and stops the running one."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins

from evalhub.orchestrator import run_experiment

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def executor() -> Iterator[Any]:
    from evalhub.execution import RayExecutor

    ex = RayExecutor(include_dashboard=False, num_cpus=2, poll_interval=0.3, start_nice=-19)
    ex.start()
    yield ex
    ex.shutdown()


@pytest.fixture
def slow_hub(hub: Any, tmp_path: Path) -> Any:
    """Two python-runtime models answering arithmetic right, slowly (0.25 s per item)."""
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=30)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "slow-a", "Slow", delay=0.25)
    register_plugin(hub, plugins, "slow-b", "Slow", delay=0.25)
    return hub


def _spec(models: str, limit: int = 12, workers: int = 2) -> str:
    return (
        f"name: rec-{uuid.uuid4().hex[:6]}\nmodels: {models}\ntasks: [arith-add]\n"
        f"config: {{limit: {limit}, batch_size: 1, resources: {{max_workers: {workers}}}}}\n"
    )


def _wait_running(hub: Any, run_id: int, min_done: int = 1, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = hub.run(run_id)
        if run["status"] == "running" and (run.get("progress") or {}).get("done", 0) >= min_done:
            return run
        assert run["status"] in ("queued", "running"), run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never got going: {hub.run(run_id)}")


def test_a_killed_worker_is_replaced_and_its_run_completes_on_attempt_2(slow_hub: Any, executor: Any) -> None:
    hub = slow_hub
    exp = run_experiment(hub, _spec("[{model: slow-a}]"), wait=False, executor=executor)
    run_id = int(exp.runs()["id"][0])
    run = _wait_running(hub, run_id, min_done=2)
    os.kill(int(run["worker"]["pid"]), signal.SIGKILL)
    exp.wait(timeout=300)
    run = hub.run(run_id)
    assert run["status"] == "completed", run
    assert run["attempt"] == 2
    samples = hub.samples(run_id)
    assert samples.height == 12 and samples["sample_key"].n_unique() == 12
    assert hub.metrics(run_id)["exact_match"] == 1.0


def test_cancelling_an_experiment_drops_queued_runs_and_stops_the_running_one(
    slow_hub: Any, executor: Any
) -> None:
    hub = slow_hub
    exp = run_experiment(
        hub, _spec("[{model: slow-a}, {model: slow-b}]", limit=30, workers=1), wait=False, executor=executor
    )
    ids = [int(i) for i in exp.runs()["id"]]
    deadline = time.monotonic() + 180
    running = None
    while running is None and time.monotonic() < deadline:
        for run_id in ids:
            run = hub.run(run_id)
            if run["status"] == "running" and (run.get("progress") or {}).get("done", 0) >= 1:
                running = run
        time.sleep(0.1)
    assert running is not None
    queued = [i for i in ids if i != running["id"]]
    assert hub.run(queued[0])["status"] == "queued"  # one worker at a time
    exp.cancel()
    exp.wait(timeout=120)
    assert exp._driver is not None and not exp._driver.is_alive()
    assert {hub.run(i)["status"] for i in ids} == {"cancelled"}
    stopped = hub.run(running["id"])
    assert stopped["progress"]["done"] < stopped["progress"]["total"]  # it stopped between batches
    assert hub.run(queued[0])["worker"] in (None, {})  # the queued run never started
    assert any("cancelled" in line["message"] for line in hub.logs(running["id"]))
