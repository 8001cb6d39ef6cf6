"""Several server processes on one MariaDB database: a server with ``--workers 2`` and a second server
beside it, written to by eight client processes at once (some with several threads), each through
its own server. Nothing is lost or doubled, every run ends ``completed``, and the run state machine
holds across processes (a change one process made is the one every other process enforces)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers import ServerProcess

import evalhub

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

PROCESSES = 8
STEPS = 3000
KEYS = ("loss", "acc")

WRITER = textwrap.dedent("""
    import json, sys, threading
    import evalhub

    urls, index, threads, steps, project = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    out, errors = [], []

    def train(k: int) -> None:
        try:
            hub = evalhub.connect(urls[(index + k) % len(urls)], project=project)
            run = hub.init_run(f"w{index}-t{k}", config={"writer": index, "thread": k}, system_metrics=False)
            base = index * 100 + k
            for step in range(steps):
                run.log({"loss": base + step / steps, "acc": -base - step / steps}, step=step)
            delivery = run.finish(timeout=300)
            out.append({"run_id": run.id, "base": base, "stored": delivery.stored, "dropped": delivery.dropped})
            hub.close()
        except BaseException as exc:  # reported to the test, which fails on it
            errors.append(repr(exc))

    workers = [threading.Thread(target=train, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"runs": out, "errors": errors}))
""")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """A server with two workers and a plain one, on one fresh MariaDB database."""
    from _servers import mysql_database

    with mysql_database() as url:
        folder = tmp_path_factory.mktemp("servers")
        artifacts = folder / "artifacts"
        procs = [
            ServerProcess(url, folder / "a", artifacts=artifacts, extra_args=["--workers", "2"]),
            ServerProcess(url, folder / "b", artifacts=artifacts),
        ]
        try:
            for proc in procs:
                proc.start(timeout=60)
            yield procs
        finally:
            for proc in procs:
                proc.stop()


@pytest.fixture
def project() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


@pytest.fixture
def via(servers: list[ServerProcess], project: str) -> Iterator[Callable[[int], httpx.Client]]:
    """``via(i)``: an HTTP client of server i (0: the two-worker one, 1: the other)."""
    clients = [
        httpx.Client(base_url=f"{s.url}/api", headers={"X-Evalhub-Project": project}, timeout=60)
        for s in servers
    ]
    yield lambda i: clients[i]
    for c in clients:
        c.close()


def test_the_two_worker_server_is_one_supervisor_with_two_processes(servers: list[ServerProcess]) -> None:
    parent = servers[0].proc
    assert parent is not None
    assert len(_workers(parent.pid)) == 2
    health = httpx.get(f"{servers[0].url}/api/health").json()
    assert health["status"] == "ok" and health["db"] == "mysql" and health["schema"]


def test_eight_writer_processes_through_both_servers_lose_and_double_nothing(
    servers: list[ServerProcess], project: str, tmp_path: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    urls = ",".join(s.url for s in servers)
    # writers 0-3: one run each; writers 4-7: three threads, each a run of its own, on alternating servers
    procs = [
        subprocess.Popen(
            [sys.executable, script, urls, str(i), "1" if i < 4 else "3", str(STEPS), project],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    runs = [run for r in results for run in r["runs"]]
    assert len(runs) == 4 * 1 + 4 * 3
    # every point acknowledged by a server (and the run's status events), none dropped
    assert all(r["stored"] >= STEPS * len(KEYS) and r["dropped"] == 0 for r in runs), runs

    hubs = [evalhub.connect(s.url, project=project) for s in servers]
    try:
        for n, run in enumerate(runs):
            hub = hubs[n % 2]  # read back through either server
            assert hub.run(run["run_id"])["status"] == "completed"
            for key, sign in (("loss", 1), ("acc", -1)):
                frame = hub.series(run["run_id"], key, max_points=None)
                steps = frame["step"].to_list()
                assert steps == list(range(STEPS)), f"run {run['run_id']} {key}: {len(steps)} points"
                expected = [sign * (run["base"] + s / STEPS) for s in range(STEPS)]
                assert frame["value"].to_list() == expected
    finally:
        for hub in hubs:
            hub.close()


def test_one_batch_posted_to_both_servers_at_once_is_stored_once(
    via: Callable[[int], httpx.Client],
) -> None:
    rid = via(0).post("/runs", json={"name": "race", "type": "training"}).json()["id"]
    batches = [
        {"stream": "s", "events": [{"seq": seq, "type": "series",
                                     "points": [{"key": "x", "step": seq, "value": float(seq)}]}]}
        for seq in range(1, 41)
    ]  # fmt: skip
    answers: list[dict[str, Any]] = []

    def post(i: int) -> None:
        for body in batches:
            r = via(i).post(f"/runs/{rid}/events", json=body)
            assert r.status_code == 200, r.text
            answers.append(r.json())

    threads = [threading.Thread(target=post, args=(i,)) for i in (0, 1, 0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a["applied"] for a in answers) == 40
    assert sum(a["duplicates"] for a in answers) == 3 * 40
    keys = via(1).get(f"/runs/{rid}/series/keys").json()["keys"]
    assert [(k["key"], k["count"]) for k in keys] == [("x", 40)]


def _experiment(via: Callable[[int], httpx.Client], n: int) -> list[int]:
    runs = [{"name": f"r{i}", "type": "offline_eval", "task": "t"} for i in range(n)]
    r = via(0).post("/experiments", json={"name": f"e{uuid.uuid4().hex[:6]}", "runs": runs})
    assert r.status_code == 201, r.text
    return [int(run["id"]) for run in r.json()["runs"]]


def _running(via: Callable[[int], httpx.Client], i: int, rid: int) -> None:
    r = via(i).post(f"/runs/{rid}/status", json={"status": "running", "attempt": 1})
    assert r.status_code == 200, r.text


def test_a_run_cancelled_through_one_server_refuses_a_completed_from_the_other(
    via: Callable[[int], httpx.Client],
) -> None:
    (rid,) = _experiment(via, 1)
    started = via(1).post(f"/runs/{rid}/events", json={"stream": "attempt-1", "attempt": 1, "events": [
        {"seq": 1, "type": "status", "status": "running"}]})  # fmt: skip
    assert started.json()["run_status"] == "running"
    assert via(0).post(f"/runs/{rid}/cancel", json={}).status_code == 200
    # the worker, talking to the other process, says completed: refused, and it hears of the cancel
    late = via(1).post(f"/runs/{rid}/events", json={"stream": "attempt-1", "attempt": 1, "events": [
        {"seq": 2, "type": "status", "status": "completed"}]}).json()  # fmt: skip
    assert late["run_status"] == "cancelled" and [r["seq"] for r in late["rejected"]] == [2]
    direct = via(1).post(f"/runs/{rid}/status", json={"status": "completed"})
    assert direct.status_code == 409 and "cancelled" in direct.json()["error"]["message"]
    assert {via(i).get(f"/runs/{rid}").json()["status"] for i in (0, 1)} == {"cancelled"}


def test_racing_changes_through_both_servers_leave_one_winner_per_run(
    via: Callable[[int], httpx.Client],
) -> None:
    ids = _experiment(via, 12)
    for n, rid in enumerate(ids):
        _running(via, n % 2, rid)
    outcome: dict[tuple[int, str], int] = {}

    def finish(i: int, status: str) -> None:
        for rid in ids:
            body: dict[str, Any] = {"status": status, "attempt": 1}
            if status == "failed":
                body["error"] = "raced"
            outcome[(rid, status)] = via(i).post(f"/runs/{rid}/status", json=body).status_code

    threads = [threading.Thread(target=finish, args=a) for a in ((0, "completed"), (1, "failed"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rid in ids:
        codes = {outcome[(rid, "completed")], outcome[(rid, "failed")]}
        assert codes == {200, 409}, (rid, outcome)
        winner = "completed" if outcome[(rid, "completed")] == 200 else "failed"
        assert {via(i).get(f"/runs/{rid}").json()["status"] for i in (0, 1)} == {winner}


def _workers(parent_pid: int) -> set[int]:
    out = subprocess.run(
        ["ps", "--ppid", str(parent_pid), "-o", "pid=,args="], capture_output=True, text=True
    )
    return {int(line.split()[0]) for line in out.stdout.splitlines() if "multiprocessing.spawn" in line}


def test_a_worker_that_dies_is_replaced_and_the_server_keeps_answering(servers: list[ServerProcess]) -> None:
    parent = servers[0].proc
    assert parent is not None
    before = _workers(parent.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = _workers(parent.pid)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"workers {before} -> {now}"
        time.sleep(0.2)
    for _ in range(10):  # the socket is still served, by both the survivor and the replacement
        assert httpx.get(f"{servers[0].url}/api/health", timeout=30).status_code == 200
