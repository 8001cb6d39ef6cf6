"""A run's life on the server: leases renewed by a worker's event batches, the reaper, lost attempts,
stale attempts refused (real servers on SQLite and MariaDB, a short lease)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from evalhub._events import EventStream
from evalhub.client import Client

LEASE = 1.5


@pytest.fixture
def server(db_url: str, server_for: Callable[..., Any]) -> Any:
    return server_for(db_url, extra_args=["--lease", str(LEASE)])


@pytest.fixture
def http(server: Any) -> httpx.Client:
    client = httpx.Client(base_url=server.url, headers={"X-Evalhub-Project": f"l{uuid.uuid4().hex[:8]}"})
    return client


def _experiment_run(http: httpx.Client, max_attempts: int = 3) -> int:
    body = {
        "name": "e",
        "runs": [{"name": "r", "type": "offline_eval", "task": "t", "max_attempts": max_attempts}],
    }
    r = http.post("/api/experiments", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["runs"][0]["id"])


def _events(
    http: httpx.Client, rid: int, events: list[dict[str, Any]], attempt: int | None, stream: str = "a"
) -> httpx.Response:
    body: dict[str, Any] = {"stream": stream, "events": events}
    if attempt is not None:
        body["attempt"] = attempt
    return http.post(f"/api/runs/{rid}/events", json=body)


def _wait(
    http: httpx.Client, rid: int, until: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = http.get(f"/api/runs/{rid}").json()
        if until(run) or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.1)


def _logs(http: httpx.Client, rid: int) -> list[str]:
    return [line["message"] for line in http.get(f"/api/runs/{rid}/logs").json()["items"]]


def test_a_silent_attempt_is_requeued_as_the_next_one_and_its_old_events_are_refused(
    http: httpx.Client,
) -> None:
    rid = _experiment_run(http)
    r = _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1)
    assert r.status_code == 200 and r.json()["lease_s"] == LEASE
    run = _wait(http, rid, lambda r: r["status"] != "running", timeout=LEASE * 2 + 20)
    assert (run["status"], run["attempt"]) == ("queued", 2), run
    assert any(
        "attempt 1 lost (no heartbeat" in m and "re-queued as attempt 2" in m for m in _logs(http, rid)
    )
    # the partitioned old worker comes back: its events are refused, naming the current attempt
    stale = _events(http, rid, [{"seq": 2, "type": "progress", "done": 5, "total": 10}], attempt=1)
    assert stale.status_code == 409
    err = stale.json()["error"]
    assert err["code"] == "stale_attempt" and "attempt 2" in err["message"]
    assert http.get(f"/api/runs/{rid}").json()["progress"]["done"] == 0
    # the retry's worker goes ahead
    fresh = _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=2, stream="b")
    assert fresh.status_code == 200 and fresh.json()["run_status"] == "running"
    assert http.post(f"/api/runs/{rid}/status", json={"status": "completed", "attempt": 1}).status_code == 409


def test_heartbeats_keep_an_attempt_alive(http: httpx.Client) -> None:
    rid = _experiment_run(http)
    assert (
        _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1).status_code == 200
    )
    until = time.monotonic() + LEASE * 3
    while time.monotonic() < until:
        assert _events(http, rid, [], attempt=1).status_code == 200  # an empty batch is a heartbeat
        time.sleep(LEASE / 5)
    assert http.get(f"/api/runs/{rid}").json()["status"] == "running"


def test_an_event_stream_heartbeats_by_itself_while_it_has_nothing_to_send(server: Any) -> None:
    client = Client(server.url, project=f"h{uuid.uuid4().hex[:8]}")
    rid = client.post("/experiments", {"name": "e", "runs": [{"name": "r", "task": "t"}]})["runs"][0]["id"]
    stream = EventStream(client, rid, stream="attempt-1", attempt=1)
    stream.status("running")
    stream.flush()
    assert stream.heartbeat_s == pytest.approx(LEASE / 4)  # learned from the server's answer
    time.sleep(LEASE * 3)
    assert client.get(f"/runs/{rid}")["status"] == "running"
    stream.status("completed")
    assert stream.close().stored == 2
    assert client.get(f"/runs/{rid}")["status"] == "completed"


def test_attempts_spent_fail_the_run_with_the_reason(http: httpx.Client) -> None:
    rid = _experiment_run(http, max_attempts=1)
    _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1)
    run = _wait(http, rid, lambda r: r["status"] != "running", timeout=LEASE * 2 + 20)
    assert run["status"] == "failed" and run["attempt"] == 1
    assert "lost: no heartbeat" in run["error"] and "1 of 1 attempts spent" in run["error"]


def test_a_training_run_that_stops_heartbeating_fails_as_lost(http: httpx.Client) -> None:
    rid = http.post("/api/runs", json={"name": "train", "type": "training"}).json()["id"]
    _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=None)
    run = _wait(http, rid, lambda r: r["status"] != "running", timeout=LEASE * 2 + 20)
    assert run["status"] == "failed" and run["error"].startswith("lost: no heartbeat for")
    assert run["attempt"] == 1  # never re-queued


def test_a_lost_attempt_reported_by_the_driver_is_requeued_once(http: httpx.Client) -> None:
    rid = _experiment_run(http)
    _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1)
    first = http.post(f"/api/runs/{rid}/lost", json={"attempt": 1, "reason": "the worker died: SIGKILL"})
    assert first.status_code == 200 and (first.json()["status"], first.json()["attempt"]) == ("queued", 2)
    again = http.post(f"/api/runs/{rid}/lost", json={"attempt": 1, "reason": "the worker died: SIGKILL"})
    assert again.json()["attempt"] == 2  # the run moved on: a repeated report changes nothing
    assert sum("the worker died: SIGKILL" in m for m in _logs(http, rid)) == 1


def test_leases_get_one_lease_of_grace_after_a_restart(server: Any) -> None:
    http = httpx.Client(base_url=server.url, headers={"X-Evalhub-Project": "grace"})
    rid = _experiment_run(http)
    _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1)
    server.stop(kill=True)
    time.sleep(LEASE * 2)  # the lease lapsed while the server was down
    server.start()
    http = httpx.Client(base_url=server.url, headers={"X-Evalhub-Project": "grace"})
    time.sleep(LEASE * 0.6)  # the reaper has swept a few times, but within its grace
    assert http.get(f"/api/runs/{rid}").json()["status"] == "running"
    assert _events(http, rid, [], attempt=1).status_code == 200  # the worker is heard again in time
    run = _wait(http, rid, lambda r: r["status"] != "running", timeout=LEASE * 3 + 20)
    assert run["status"] == "queued"  # then, silent again, it is reaped


@pytest.mark.mysql
def test_several_servers_on_one_database_reap_each_run_once(
    mysql_url: str, server_for: Callable[..., Any]
) -> None:
    servers = [server_for(mysql_url, extra_args=["--lease", str(LEASE)]) for _ in range(3)]
    http = httpx.Client(base_url=servers[0].url, headers={"X-Evalhub-Project": "many"})
    ids = [_experiment_run(http) for _ in range(8)]
    for rid in ids:
        _events(http, rid, [{"seq": 1, "type": "status", "status": "running"}], attempt=1)
    for rid in ids:
        run = _wait(http, rid, lambda r: r["status"] != "running", timeout=LEASE * 3 + 30)
        assert (run["status"], run["attempt"]) == ("queued", 2), run
    time.sleep(LEASE * 2)  # every reaper had its chance
    for rid in ids:
        assert sum("re-queued as attempt 2" in m for m in _logs(http, rid)) == 1
        assert http.get(f"/api/runs/{rid}").json()["attempt"] == 2
