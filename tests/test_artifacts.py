"""Artifacts of any size: a 200 MB file goes up and comes back through the client with bounded memory
on both sides (the server streams it to disk, the client from and to disk), stored once per content."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from evalhub.client import Client
from evalhub.hub import Hub

pytestmark = pytest.mark.slow

SIZE = 200 * 1024 * 1024
BOUND_MB = 64  # far below the file's 200 MB


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_200_mb_artifact_round_trips_with_bounded_memory(
    server_for: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_for()
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        for i in range(SIZE // (1 << 20)):
            block = (i.to_bytes(4, "little") * (1 << 18))[: 1 << 20]
            out.write(block)
            digest.update(block)
    hub = Hub(Client(server.url, project=f"a{uuid.uuid4().hex[:8]}"))
    run = hub.init_run("weights", system_metrics=False)
    run.finish()
    server_before = _peak_rss_mb(server.proc.pid)
    # the client in a process of its own, so its peak memory is its own: VmHWM is the high-water mark
    # of the process image itself (getrusage's ru_maxrss carries the forking parent's over exec, so a
    # child of a large pytest process would report pytest's size)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from evalhub.client import Client
        from evalhub.hub import Hub
        hub = Hub(Client({server.url!r}, project={hub.project!r}))
        info = hub.upload_artifact({run.id}, {str(big)!r}, name="big.bin")
        hub.download_artifact({run.id}, "big.bin", {str(tmp_path / "back.bin")!r})
        hwm = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        print(info["sha256"], int(hwm.split()[1]) // 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True
    )
    sha, client_peak = done.stdout.split()
    assert sha == digest.hexdigest()
    back = tmp_path / "back.bin"
    assert back.stat().st_size == SIZE
    assert hashlib.sha256(back.read_bytes()).hexdigest() == sha
    assert int(client_peak) < 100 + BOUND_MB, (
        f"the client held the file: peak {client_peak} MB"
    )  # its imports take ~45 MB
    grew = _peak_rss_mb(server.proc.pid) - server_before
    assert grew < BOUND_MB, f"the server's memory grew by {grew:.0f} MB for a {SIZE >> 20} MB upload"
    # stored once per content: a second run holding the same bytes adds no blob
    other = hub.init_run("copy", system_metrics=False)
    other.finish()
    hub.upload_artifact(other.id, big, name="same.bin")
    blobs = [p for p in (server.artifacts / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].name == sha


def test_an_artifact_over_the_servers_limit_is_refused_whole(
    server_for: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_for(extra_args=["--max-artifact-bytes", str(1 << 20)])
    hub = Hub(Client(server.url, project="limits"))
    run = hub.init_run("r", system_metrics=False)
    run.finish()
    file = tmp_path / "two-mb.bin"
    file.write_bytes(os.urandom(2 << 20))
    answer = httpx.put(f"{server.url}/api/runs/{run.id}/artifacts/x.bin", content=file.read_bytes(),
                       headers={"X-Evalhub-Project": "limits"})  # fmt: skip
    assert answer.status_code == 413 and "--max-artifact-bytes" in answer.json()["error"]["message"]
    assert hub.artifacts(run.id).height == 0
    assert (
        not [p for p in (server.artifacts / "tmp").glob("*")] if (server.artifacts / "tmp").exists() else True
    )
    assert psutil.pid_exists(server.proc.pid)
