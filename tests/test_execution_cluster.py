"""A two-node Ray cluster (ray.cluster_utils.Cluster) losing a node mid-run: every run still completes."""

from __future__ import annotations

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
def cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    from evalhub.execution.connection import _priority

    # Ray's node processes start at a raised priority so a busy machine does not time them out
    with _priority(-19):
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def test_runs_complete_when_a_node_is_lost_mid_run(hub: Any, cluster: Any, tmp_path: Path) -> None:
    from evalhub import tiny
    from evalhub.execution import RayExecutor

    tiny.write_tasks(tmp_path, n=20)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "slow-a", "Slow", delay=0.3)
    register_plugin(hub, plugins, "slow-b", "Slow", delay=0.3)
    spec = (
        f"name: nodes-{uuid.uuid4().hex[:6]}\nmodels: [{{model: slow-a}}, {{model: slow-b}}]\n"
        "tasks: [arith-add]\nconfig: {limit: 10, batch_size: 1, resources: {max_workers: 2}}\n"
    )
    executor = RayExecutor(address=cluster.address, poll_interval=0.3)
    exp = run_experiment(hub, spec, wait=False, executor=executor)
    ids = [int(i) for i in exp.runs()["id"]]
    worker_node = cluster.list_all_nodes()[1]
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline:
        for run_id in ids:
            run = hub.run(run_id)
            worker = run.get("worker") or {}
            if run["status"] == "running" and worker.get("ray_node_id") == worker_node.node_id:
                if (run.get("progress") or {}).get("done", 0) >= 1:
                    victim = run
        time.sleep(0.1)
    assert victim is not None, [hub.run(i) for i in ids]
    cluster.remove_node(worker_node)
    exp.wait(timeout=300)
    runs = [hub.run(i) for i in ids]
    assert [r["status"] for r in runs] == ["completed", "completed"], runs
    lost = hub.run(victim["id"])
    assert lost["attempt"] == 2 and lost["worker"]["ray_node_id"] != worker_node.node_id
    assert hub.samples(victim["id"]).height == 10
