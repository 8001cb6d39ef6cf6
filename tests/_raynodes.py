"""Real Ray nodes for the tests: ``ray start --head`` (and ``ray start --address`` workers) on loopback,
each with a temp folder of its own under /tmp, stopped by killing that folder's processes only (never
``ray stop``, which would stop every Ray of the machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START_TIMEOUT = 240.0


class RayNode:
    """One ``ray start`` node: ``.address`` (of the head), ``.temp_dir``, ``.stop()``."""

    def __init__(self, temp_dir: Path, address: str, log: Path) -> None:
        self.temp_dir = temp_dir
        self.address = address
        self.log = log

    def stop(self) -> None:
        from evalhub.execution.cluster import kill_processes

        kill_processes(str(self.temp_dir), grace=3.0)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _temp_dir() -> Path:
    # Ray's socket paths must stay under 107 bytes: a short folder of /tmp
    return Path(tempfile.mkdtemp(prefix=f"ehr{uuid.uuid4().hex[:4]}-", dir="/tmp"))


def start_head(num_cpus: int = 2, env: dict[str, str] | None = None, extra: Sequence[str] = (),
               temp_dir: Path | None = None) -> RayNode:  # fmt: skip
    """``ray start --head`` on 127.0.0.1, every port below 10000 (``temp_dir``: Ray's temp folder, else a
    new one under /tmp)."""
    from evalhub.execution.cluster import node_command

    def start(folder: Path, log: Path) -> RayNode:
        _run(node_command(folder, head=True, num_cpus=num_cpus, extra=list(extra)), env, log)
        return RayNode(folder, (folder / "ray_current_cluster").read_text().strip(), log)

    return _attempts(start, temp_dir=temp_dir)


def start_worker(
    head: RayNode,
    num_cpus: int = 1,
    env: dict[str, str] | None = None,
    wrap: Sequence[str] = (),
    resources: str | None = None,
) -> RayNode:
    """``ray start --address`` joining ``head``; ``wrap`` runs it under another command (``unshare …``)."""
    from evalhub.execution.cluster import node_command

    extra = ["--resources", resources] if resources else []

    def start(temp_dir: Path, log: Path) -> RayNode:
        cmd = node_command(temp_dir, head=False, address=head.address, num_cpus=num_cpus, extra=extra)
        _run([*wrap, *cmd], env, log)
        return RayNode(temp_dir, head.address, log)

    return _attempts(start)


def _attempts(start: Any, attempts: int = 3, temp_dir: Path | None = None) -> RayNode:
    """On a machine busy with other work Ray's agents may miss the raylet's start-up wait: start over."""
    for attempt in range(1, attempts + 1):
        folder = temp_dir or _temp_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "start.log"
        try:
            return start(folder, log)  # type: ignore[no-any-return]
        except RuntimeError:
            RayNode(folder, "", log).stop()
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _run(cmd: list[str], env: dict[str, str] | None, log: Path) -> None:
    from evalhub.execution.cluster import node_env

    # Ray's node processes at a raised priority (root here), its workers back at the usual one
    cmd = ["nice", "-n", "-19", *cmd] if os.geteuid() == 0 else cmd
    env = {**node_env(), "EVALHUB_WORKER_NICE": "0", **(env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
    if code != 0:
        raise RuntimeError(f"`ray start` failed ({code}): {log.read_text(errors='replace')[-3000:]}")


def wait_nodes(address: str, count: int, timeout: float = 120.0) -> None:
    """Until ``count`` nodes are alive on the cluster (from this process's Ray connection)."""
    import ray

    deadline = time.monotonic() + timeout
    while sum(1 for n in ray.nodes() if n.get("Alive")) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} nodes not alive at {address} after {timeout}s: {ray.nodes()}")
        time.sleep(0.5)


def until(what: str, check: Any, timeout: float = 240.0) -> Any:
    """``check()``'s first true answer, asked every 0.2 s; an AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def clean_env() -> dict[str, str]:
    """This process's environment without a Ray address (a child chooses its own)."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    return env
