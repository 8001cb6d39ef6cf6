"""A worker node that cannot see the submitting machine's files: a second ``ray start --address`` node in
its own mount namespace (``unshare --mount``, a tmpfs over pytest's whole temp folder: the task data,
the plugin code, the weights folder, the evalhub home and its bundle staging), the only node with CPUs
for workers. The relay is forced (``EVALHUB_RELAY=always``): every node here shares one loopback, so
this tests that the workers report through the relay, not that a worker cut off from the server by a
true network partition gets through — that is not tested.

Every run completes: the task data and the plugin code travel in the bundle (Ray packages), the
weights are fetched by the worker over HTTP into its node's cache, the events go through the relay.
"""

from __future__ import annotations

import hashlib
import tarfile
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _raynodes import RayNode, start_head, start_worker, wait_nodes

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayNode, Path]]:
    """A head with no CPUs (workers cannot go there) and a node that sees none of pytest's files."""
    from evalhub.execution.connection import RayOptions, ray_connection

    base = tmp_path_factory.getbasetemp()
    head = start_head(num_cpus=0)
    wrap = ["unshare", "--mount", "--", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(base)]
    node = None
    try:
        node = start_worker(head, num_cpus=2, wrap=wrap, resources='{"hidden": 1}')
        with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
            wait_nodes(head.address, 2)
        yield head, base
    finally:
        ray_connection().shutdown()
        if node is not None:
            node.stop()
        head.stop()


@pytest.fixture
def weights_url(tmp_path: Path) -> Iterator[Any]:
    """``url_of(folder)``: the folder as a .tar.gz served over HTTP on loopback, with its sha256."""
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def url_of(folder: Path) -> str:
        archive = served / f"{folder.name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        return f"http://127.0.0.1:{server.server_port}/{archive.name}#sha256={digest}"

    yield url_of
    server.shutdown()


def _hidden_node_sees(path: str) -> bool:
    import ray

    def exists(p: str) -> bool:  # defined here: sent by value (the test module is not importable there)
        import os

        return os.path.exists(p)

    task = ray.remote(exists).options(resources={"hidden": 0.01}, num_cpus=0)
    return bool(ray.get(task.remote(path), timeout=120))


def test_a_node_without_the_files_runs_everything_through_bundle_and_relay(
    hub: Any, hidden: tuple[RayNode, Path], tmp_path: Path, weights_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from evalhub import tiny
    from evalhub.execution import ClusterExecutor
    from evalhub.execution.connection import RayOptions, ray_connection
    from evalhub.execution.relay import relay_name

    head, base = hidden
    monkeypatch.setenv("EVALHUB_RELAY", "always")
    data = tiny.write_tasks(tmp_path / "tasks", n=20)
    tiny.register_tasks(hub, tmp_path / "tasks")
    plugins = write_plugins(tmp_path / "plugins")
    (plugins / "weights" / "config.txt").write_text("weights of the test plugin\n")
    for name in ("far-a", "far-b"):
        register_plugin(hub, plugins, name, "Slow", delay=0.02)
        hub.register_checkpoint(name, "v2", uri=weights_url(plugins / "weights"), step=2)
    spec = (
        f"name: hidden-{uuid.uuid4().hex[:6]}\n"
        "models: [{model: far-a, checkpoints: [v2]}, {model: far-b, checkpoints: [v2]}]\n"
        "tasks: [arith-add]\nconfig: {limit: 8, batch_size: 2}\n"
    )
    task_file = str(data["arith-add"])
    with ray_connection().session(RayOptions(address=head.address, address_source="the test's cluster")):
        # the premise: the worker node sees none of this test's files (nor the evalhub home)
        assert str(tmp_path).startswith(str(base))
        assert Path(task_file).exists() and not _hidden_node_sees(task_file), "the node sees the task data"
        assert not _hidden_node_sees(str(plugins)), "the node sees the plugin code"
        hidden_ids = {n["NodeID"] for n in ray.nodes() if n.get("Alive") and "hidden" in n["Resources"]}
        exp = hub.run_experiment(spec, executor=ClusterExecutor(address=head.address, poll_interval=0.3),
                                 wait=False)  # fmt: skip
        exp.wait(timeout=400)
        runs = list(hub.client.paged(f"/experiments/{exp.id}/runs"))
        assert [r["status"] for r in runs] == ["completed", "completed"], [r.get("error") for r in runs]
        for run in runs:
            worker = run.get("worker") or {}
            assert worker.get("ray_node_id") in hidden_ids, worker
            assert worker.get("relayed") is True, worker
            samples = hub.samples(int(run["id"]))
            assert samples.height == 8
        assert exp.compare()["exact_match"].to_list() == [1.0, 1.0]
        # the task data went in the bundle (a Ray package), named by the path it has here
        shipped = (exp.info().get("metadata") or {}).get("evalhub_bundle") or {}
        assert task_file in shipped.get("files", {}), shipped
        assert str(plugins) in shipped["files"]
        # and every event came through the relay
        relay = ray.get_actor(relay_name(hub.url), namespace="evalhub")
        assert ray.get(relay.stats.remote())["forwarded"] >= 2 * 4, "the workers did not use the relay"
