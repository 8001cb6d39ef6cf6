"""evalhub's own local Ray cluster (``--on-cluster``/``--detach`` without an address): started under the
evalhub home by the first submission, outliving the command that started it, shown by ``evalhub ray
status``; once no scheduler and no driver used it for ``EVALHUB_RAY_CLUSTER_IDLE_S`` its keeper stops
it (its own processes only)."""

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
from _raynodes import clean_env

pytestmark = [pytest.mark.ray, pytest.mark.slow]


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
    env = {**clean_env(), "EVALHUB_URL": hub.url, "EVALHUB_PROJECT": hub.project, "EVALHUB_HOME": str(home),
           "EVALHUB_RAY_CLUSTER_IDLE_S": "5", "EVALHUB_RAY_START_NICE": "-19"}  # fmt: skip
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
