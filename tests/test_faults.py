"""Real faults, and no run left claiming ``running`` without a live worker: a driver SIGKILLed with its
process group (and the local Ray it started), a training process SIGKILLed, a worker whose events the
server refuses. The server runs with a short lease so the reaper acts within seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins

from evalhub.client import Client
from evalhub.hub import Hub

LEASE = 3.0
MARGIN = 30.0  # the reaper sweeps every quarter lease; the rest is a loaded 2-core machine


@pytest.fixture
def server(server_for: Callable[..., Any]) -> Any:
    return server_for(extra_args=["--lease", str(LEASE)])


@pytest.fixture
def hub(server: Any) -> Iterator[Hub]:
    h = Hub(Client(server.url, project=f"f{uuid.uuid4().hex[:8]}"))
    yield h
    h.close()


def _kill_tree(marker: str) -> None:
    """SIGKILL every process whose command line names ``marker`` (a temp folder of the test's own)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f}s")
        time.sleep(0.2)


@pytest.mark.ray
@pytest.mark.slow
def test_a_driver_killed_mid_experiment_leaves_no_run_running(hub: Hub, tmp_path: Path) -> None:
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=40)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "slow-a", "Slow", delay=0.4)
    register_plugin(hub, plugins, "slow-b", "Slow", delay=0.4)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: doomed\nmodels: [{model: slow-a}, {model: slow-b}]\ntasks: [arith-add]\n"
        "config: {limit: 40, batch_size: 1, resources: {max_workers: 2, cpus_per_worker: 0.5}}\n"
    )
    # the driver's own Ray lives here, so the test can clean up after it (short: Ray's socket paths
    # must stay under the 107 bytes of a Unix socket name)
    ray_tmp = Path(tempfile.mkdtemp(prefix="ehray-", dir="/tmp"))
    output = tmp_path / "driver.log"
    env = {
        **os.environ,
        "RAY_TMPDIR": str(ray_tmp),
        "RAY_AUTH_MODE": "disabled",
        "EVALHUB_RAY_DASHBOARD": "0",
        "EVALHUB_RAY_START_NICE": "-19",
    }
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli", "run", str(spec), "--url", hub.url, "--project", hub.project,
         "--no-progress"],
        env=env, start_new_session=True, stdout=output.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def both_running() -> bool:
            runs = hub.runs()
            return runs.height == 2 and all(
                r["status"] == "running" and hub.run(r["id"])["progress"]["done"] >= 1
                for r in runs.iter_rows(named=True)
            )

        try:
            _until(both_running, 300, "both runs running with progress")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; the driver said:\n{output.read_text(errors='replace')[-4000:]}"
            ) from None
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and everything it started in its group
        driver.wait(timeout=30)
        killed = time.monotonic()
        _until(
            lambda: all(s != "running" for s in hub.runs()["status"].to_list()),
            LEASE + MARGIN,
            "no run running after the driver died",
        )
        waited = time.monotonic() - killed
        for run in hub.runs().iter_rows(named=True):
            assert (run["status"], run["attempt"]) == ("queued", 2), run  # re-queued for a next driver
            assert any("attempt 1 lost" in line["message"] for line in hub.logs(run["id"])), run
        assert waited < LEASE + MARGIN
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        _kill_tree(str(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_training_process_killed_is_failed_as_lost(hub: Hub, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from evalhub.client import Client
        from evalhub.hub import Hub
        hub = Hub(Client({hub.url!r}, project={hub.project!r}))
        run = hub.init_run("doomed-training", system_metrics=False)
        print(run.id, flush=True)
        step = 0
        while True:
            run.log({{"loss": 1.0 / (step + 1)}}, step=step)
            step += 1
            time.sleep(0.01)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id = int(proc.stdout.readline())
        _until(
            lambda: hub.run(run_id)["status"] == "running" and hub.series_keys(run_id).height, 60, "logging"
        )
        proc.kill()
        proc.wait(timeout=30)
        run = _until(
            lambda: (r := hub.run(run_id))["status"] != "running" and r,
            LEASE + MARGIN,
            "the run leaving running",
        )
        assert run["status"] == "failed" and run["error"].startswith("lost: no heartbeat for"), run
        assert run["attempt"] == 1  # a training run is never re-queued
    finally:
        if proc.poll() is None:
            proc.kill()


HUGE_PLUGIN = '''
def _answer(prompt):
    a, b = prompt.strip().rstrip("=").split("+")
    return str(int(a) + int(b))


class OneHugeAnswer:
    """Right answers, except one that no server field can hold."""

    def __init__(self, uri, params):
        self.calls = 0

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            self.calls += 1
            out.append("9" * 20_000 if self.calls == 3 else _answer(p))
        return out
'''


def test_a_worker_whose_events_are_refused_fails_its_run_with_the_count(
    server_for: Callable[..., Any], tmp_path: Path
) -> None:
    """The worker reports completed only when every event is acknowledged (driven without Ray)."""
    from evalhub import tiny
    from evalhub.execution.worker import Worker

    server = server_for(extra_args=["--max-text-bytes", "4096"])
    hub = Hub(Client(server.url, project="refused"))
    tiny.write_tasks(tmp_path, n=10)
    tiny.register_tasks(hub, tmp_path)
    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / "evalhub_huge_plugin.py").write_text(HUGE_PLUGIN)
    hub.register_family("plugins", modality="llm")
    hub.register_model(
        "huge", family="plugins", runtime="python", code_uri=str(tmp_path / "huge"),
        adapter="evalhub_huge_plugin:OneHugeAnswer",
    )  # fmt: skip
    hub.register_checkpoint("huge", "v1", uri=str(tmp_path / "huge"), step=1)
    exp = hub.client.post(
        "/experiments",
        {"name": "e", "runs": [{"name": "r", "type": "offline_eval", "model": "huge", "checkpoint": "v1",
                                "runtime": "python", "task": "arith-add"}]},
    )  # fmt: skip
    run_id = exp["runs"][0]["id"]
    worker = Worker(
        server.url, None, "refused",
        {"model": "huge", "name": "v1", "uri": str(tmp_path / "huge"), "runtime": "python",
         "adapter": "evalhub_huge_plugin:OneHugeAnswer", "code_uri": str(tmp_path / "huge"), "params": {}},
    )  # fmt: skip
    assert worker.load()["ok"]
    answer = worker.evaluate(
        {
            "run_id": run_id,
            "attempt": 1,
            "task": hub.task("arith-add"),
            "config": {"limit": 8, "batch_size": 4},
        }
    )
    worker.close()
    assert answer["status"] == "failed" and answer["delivered"], answer
    run = hub.run(run_id)
    assert run["status"] == "failed"
    assert "1 of the attempt's events were refused by the server and lost" in run["error"], run
    assert "4096 bytes" in run["error"]
    assert hub.samples(run_id).height == 7  # every other sample is stored
    assert any("evalhub dropped sample" in line["message"] for line in hub.logs(run_id))
