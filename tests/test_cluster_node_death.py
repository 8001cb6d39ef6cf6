"""A worker node SIGKILLed mid-experiment, on a real two-node cluster (``ray start --head`` and ``ray start
--address`` on loopback, one CPU each): the run whose worker was on that node is retried on the node
that is left and completes on a later attempt, with every sample stored once; the other run is not
disturbed. Every process of the killed node (its raylet, its agents, its workers) gets SIGKILL at once,
as when a machine loses power; the scheduler lives on the cluster (the default executor)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _raynodes import RayNode, start_head, start_worker, until, wait_nodes

pytestmark = [pytest.mark.ray, pytest.mark.slow]

LIMIT = 40


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[RayNode, RayNode]]:
    from evalhub.execution.connection import RayOptions, ray_connection

    head = start_head(num_cpus=1)
    node = None
    try:
        node = start_worker(head, num_cpus=1)
        with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
            wait_nodes(head.address, 2)
        yield head, node
    finally:
        ray_connection().shutdown()
        if node is not None:
            node.stop()
        head.stop()


def _sigkill_node(node: RayNode) -> int:
    """SIGKILL every process of ``node`` at once (stopped first, so none can start another)."""
    from evalhub.execution.cluster import cluster_processes

    pids = cluster_processes(str(node.temp_dir))
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    return len(pids)


def test_a_sigkilled_worker_node_s_run_is_retried_on_the_node_left(
    hub: Any, nodes: tuple[RayNode, RayNode], tmp_path: Path
) -> None:
    from evalhub import tiny
    from evalhub.execution import ClusterExecutor

    head, victim = nodes
    tiny.write_tasks(tmp_path, n=LIMIT)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    for name in ("slow-a", "slow-b"):
        register_plugin(hub, plugins, name, "Slow", delay=0.25)
    spec = (
        f"name: node-death-{uuid.uuid4().hex[:6]}\nmodels: [{{model: slow-a}}, {{model: slow-b}}]\n"
        f"tasks: [arith-add]\nconfig: {{limit: {LIMIT}, batch_size: 2, resources: {{max_workers: 2}}}}\n"
    )
    exp = hub.run_experiment(spec, wait=False, executor=ClusterExecutor(address=head.address))
    run_ids = [int(r) for r in exp.runs()["id"]]

    def both_running() -> list[dict[str, Any]] | None:
        runs = [hub.run(r) for r in run_ids]
        going = [
            r for r in runs if r["status"] == "running" and (r.get("progress") or {}).get("done", 0) >= 4
        ]
        return runs if len(going) == 2 else None

    runs = until("both runs are under way, one on each node", both_running)
    where = {r["id"]: (r.get("worker") or {}).get("ray_node_id") for r in runs}
    assert len(set(where.values())) == 2, where  # one CPU a node: one worker on each
    import ray

    from evalhub.execution.connection import RayOptions, ray_connection

    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        head_id = next(
            n["NodeID"] for n in ray.nodes() if n.get("Alive") and "node:__internal_head__" in n["Resources"]
        )
    [lost] = [r for r, node_id in where.items() if node_id != head_id]
    [kept] = [r for r in run_ids if r != lost]
    assert _sigkill_node(victim) > 0

    assert exp.wait(timeout=400).status() == "completed", [(r["name"], r["error"]) for r in exp.failed_runs()]
    retried, untouched = hub.run(lost), hub.run(kept)
    assert retried["status"] == "completed" and retried["attempt"] >= 2, retried
    assert retried["worker"]["ray_node_id"] == head_id, retried["worker"]
    assert untouched["status"] == "completed" and untouched["attempt"] == 1, untouched
    for run_id in run_ids:
        samples = hub.samples(run_id)
        assert samples.height == LIMIT and samples["sample_key"].n_unique() == LIMIT, (run_id, samples.height)
        assert hub.metrics(run_id)["exact_match"] == pytest.approx(1.0)
    lines = [line["message"] for line in hub.logs(lost)]
    assert any("lost" in m or "died" in m for m in lines), lines
