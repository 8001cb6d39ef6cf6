"""A Ray address that does not answer ends ``evalhub run`` within 60 s in one error line naming the address
and where it came from (``--ray-address``, ``RAY_ADDRESS``, or the stale ``ray_current_cluster`` record a
SIGKILLed ``ray start`` leaves in Ray's temp folder, which plain ``ray.init()`` follows); the runs end
failed with that reason, none stays queued."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _raynodes import clean_env, start_head

pytestmark = pytest.mark.slow


@pytest.fixture
def project(hub: Any, tmp_path: Path) -> Any:
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=10)
    tiny.register_tasks(hub, tmp_path)
    register_plugin(hub, write_plugins(tmp_path / "plugins"), "quick", "Slow", delay=0)
    spec = tmp_path / "exp.yaml"
    spec.write_text(f"name: addr-{uuid.uuid4().hex[:6]}\nmodels: [{{model: quick}}]\ntasks: [arith-add]\n")
    hub.spec_path = spec
    return hub


def _dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed


def _run(hub: Any, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "evalhub.cli", "run", "--no-progress", str(hub.spec_path), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**clean_env(), "EVALHUB_URL": hub.url, "EVALHUB_PROJECT": hub.project, **env},
    )  # fmt: skip
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("how", "source"),
    [
        ("flag", "--ray-address"),
        ("env", "the RAY_ADDRESS environment variable"),
        ("flag-on-cluster", "--ray-address"),
    ],
)
def test_an_address_that_does_not_answer_ends_within_60s_naming_it(
    project: Any, how: str, source: str
) -> None:
    address = _dead_address()
    args = ["--ray-address", address] if how.startswith("flag") else []
    if how.endswith("on-cluster"):
        args.append("--on-cluster")
    env = {"RAY_ADDRESS": address} if how == "env" else {}
    result, took = _run(project, *args, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 60, took
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and f"no Ray cluster answers at {address} (from {source})" in last, last
    runs = project.runs()
    assert list(runs["status"]) == ["failed"] and address in str(runs["error"][0]), runs


@pytest.mark.ray
def test_the_stale_record_of_a_killed_ray_start_ends_within_60s_naming_it(project: Any) -> None:
    from evalhub.execution.cluster import cluster_processes

    ray_tmp = Path(f"/tmp/ehs{uuid.uuid4().hex[:6]}")
    node = start_head(num_cpus=1, temp_dir=ray_tmp / "ray")  # where plain ray.init() looks, under RAY_TMPDIR
    try:
        record = ray_tmp / "ray" / "ray_current_cluster"
        address = record.read_text().strip()
        for pid in cluster_processes(str(node.temp_dir)):  # a killed `ray start`: its record stays
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        assert record.exists() and not cluster_processes(str(node.temp_dir))
        result, took = _run(project, env={"RAY_TMPDIR": str(ray_tmp)})
    finally:
        node.stop()
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 60, took
    last = result.stderr.strip().splitlines()[-1]
    assert f"no Ray cluster answers at {address}" in last and str(record) in last and "stale" in last, last
    assert list(project.runs()["status"]) == ["failed"]
