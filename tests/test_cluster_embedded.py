"""evalhub's own local Ray cluster (a submission without a Ray address, the default executor): started
under the evalhub home by the first submission, outliving the command or kernel that started it, shown
by ``evalhub ray status``; once no scheduler and no driver used it for ``EVALHUB_RAY_CLUSTER_IDLE_S``
its keeper stops it (its own processes only). These tests run the default as a user gets it: without
the suite's ``EVALHUB_EXECUTOR=process``."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _kernel import Kernel
from _raynodes import clean_env

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _default_env(hub: Any, home: Path, **extra: str) -> dict[str, str]:
    env = {**clean_env(), "EVALHUB_URL": hub.url, "EVALHUB_PROJECT": hub.project, "EVALHUB_HOME": str(home),
           "EVALHUB_RAY_START_NICE": "-19", **extra}  # fmt: skip
    env.pop("EVALHUB_EXECUTOR", None)  # the default, as a user gets it
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalhub.cli", *args], capture_output=True, text=True,
                          timeout=400, env=env, check=False)  # fmt: skip


def test_the_local_cluster_outlives_its_starter_and_stops_when_idle(hub: Any, tmp_path: Path) -> None:
    from evalhub import tiny
    from evalhub.execution import cluster

    tiny.write_tasks(tmp_path, n=10)
    tiny.register_tasks(hub, tmp_path)
    register_plugin(hub, write_plugins(tmp_path / "plugins"), "quick", "Slow", delay=0.2)
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        f"name: emb-{uuid.uuid4().hex[:6]}\nmodels: [{{model: quick}}]\ntasks: [arith-add]\nconfig: {{limit: 10}}\n"
    )
    home = tmp_path / "home"
    env = _default_env(hub, home, EVALHUB_RAY_CLUSTER_IDLE_S="5")
    try:
        result = _cli("run", "--detach", str(spec), env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        exp_id = int(re.search(r"experiment (\d+) ", result.stdout).group(1))  # type: ignore[union-attr]
        info = cluster.running(home)
        assert info is not None, "the local cluster stopped with the command that started it"
        shown = _cli("ray", "status", env=env)
        assert info["address"] in shown.stdout, shown.stdout + shown.stderr
        attached = _cli("attach", str(exp_id), "--no-progress", env=env)
        assert attached.returncode == 0 and "1 completed" in attached.stdout, (
            attached.stdout + attached.stderr
        )
        # nothing uses it any more: its keeper stops it (checking every 10 s)
        deadline = time.monotonic() + 120
        while cluster.running(home) is not None and time.monotonic() < deadline:
            time.sleep(1.0)
        assert cluster.running(home) is None, "the idle local cluster was not stopped"
        # its processes go (SIGTERM, SIGKILL after 5 s): none is left behind
        deadline = time.monotonic() + 30
        while cluster.cluster_processes(str(info["temp_dir"])) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert cluster.cluster_processes(str(info["temp_dir"])) == []
        assert "no local Ray cluster" in _cli("ray", "stop", env=env).stdout
    finally:
        cluster.stop(home)


def test_an_experiment_cell_goes_on_through_a_kernel_restart(hub: Any, tmp_path: Path) -> None:
    """The default executor in a real kernel: an experiment cell, the kernel restarted mid-run (its
    process killed), every run completes on its first attempt and the new kernel reattaches."""
    from evalhub import tiny
    from evalhub.execution import cluster

    tiny.write_tasks(tmp_path, n=12)
    tiny.register_tasks(hub, tmp_path)
    register_plugin(hub, write_plugins(tmp_path / "plugins"), "slowish", "Slow", delay=0.5)
    home = tmp_path / "home"
    kernel = Kernel(_default_env(hub, home, EVALHUB_RAY_DASHBOARD="0"), tmp_path)
    try:
        kernel.run("import evalhub\nhub = evalhub.connect()\n%load_ext evalhub")
        cell = (
            "%%evalhub experiment --no-wait\n"
            "name: through-a-restart\nmodels: [{model: slowish}]\ntasks: [arith-add]\n"
            "config: {limit: 12, batch_size: 2}\n"
        )
        kernel.run(cell, timeout=400)
        exp_id = int(kernel.run("print(hub.experiments(limit=1)['id'][0])").strip())
        exp = hub.experiment(exp_id)
        run_id = int(exp.runs()["id"][0])
        deadline = time.monotonic() + 300
        while (hub.run(run_id).get("progress") or {}).get("done", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hub.run(run_id)["status"] == "running", hub.run(run_id)
        kernel.restart()
        assert exp.wait(timeout=300).status() == "completed", exp.info()
        run = hub.run(run_id)
        assert run["status"] == "completed" and run["attempt"] == 1, run
        answer = kernel.run(f"import evalhub\nprint(evalhub.connect().experiment({exp_id}).status())")
        assert answer.strip().endswith("completed"), answer
    finally:
        kernel.close()
        cluster.stop(home)
