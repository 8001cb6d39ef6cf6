"""EventStream against a real tracking server process (SQLite file and MariaDB).

Servers come from conftest's ``server_for``: these tests SIGKILL them and start them again on the
same database and port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalhub._events import EventStream
from evalhub.client import Client
from evalhub.errors import InvalidValue
from evalhub.hub import Hub


@pytest.fixture
def server(db_url: str, server_for: Callable[..., Any]) -> Any:
    """A server of this test's own (SQLite file, then MariaDB) that the test may kill and restart."""
    return server_for(db_url)


def _counts(client: Client, run_id: int) -> dict[str, int]:
    return {k["key"]: k["count"] for k in client.get(f"/runs/{run_id}/series/keys")["keys"]}


def _steps(client: Client, run_id: int, key: str, last: int) -> list[int]:
    """Every stored step of ``key`` up to ``last``, read in windows of 10,000 (the read's cap)."""
    steps: list[int] = []
    for lo in range(0, last + 1, 10_000):
        answer = client.get(
            f"/runs/{run_id}/series", key=key, max_points=10_000, min_step=lo, max_step=min(lo + 9_999, last)
        )
        assert not answer["downsampled"]
        steps += [p["step"] for p in answer["points"]]
    return steps


@pytest.mark.slow
def test_eight_threads_into_one_run_store_every_point(server: Any) -> None:
    hub = Hub(Client(server.url))
    run = hub.init_run("threads", system_metrics=False)

    def work(i: int) -> None:
        for step in range(5000):
            run.log({f"t{i}": step * 0.5}, step=step)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finish()
    counts = _counts(hub.client, run.id)
    assert counts == {f"t{i}": 5000 for i in range(8)}
    assert sum(counts.values()) == 40_000
    assert _steps(hub.client, run.id, "t3", 4999) == list(range(5000))
    assert hub.run(run.id)["status"] == "completed"


@pytest.mark.slow
def test_server_killed_and_restarted_loses_nothing_and_doubles_nothing(server: Any) -> None:
    client = Client(server.url, retries=0)
    run = client.post("/runs", {"name": "survivor", "type": "training"})
    stream = EventStream(client, run["id"], flush_interval=0.02, max_batch_points=400)
    total = 30_000
    logged = threading.Event()

    def produce() -> None:
        for step in range(total):
            stream.series("loss", step, 1.0 / (step + 1))
            if step % 500 == 499:
                time.sleep(0.01)  # keep the stream busy across the kill
        logged.set()

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 60
    while stream.delivery().stored < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.delivery().stored >= 2000, stream.last_error
    server.stop(kill=True)  # SIGKILL while the client is logging
    time.sleep(0.5)
    server.start(timeout=90)  # same database, same port
    producer.join()
    assert logged.is_set()
    stream.close(timeout=120)
    assert stream.pending == 0 and stream.dropped == 0
    assert _counts(client, run["id"]) == {"loss": total}
    assert _steps(client, run["id"], "loss", total - 1) == list(range(total))


def test_full_buffer_blocks_the_producer_and_drops_nothing(server_for: Callable[..., Any]) -> None:
    srv = server_for()
    client = Client(srv.url, retries=0)
    run = client.post("/runs", {"name": "blocked", "type": "training"})
    srv.stop(kill=True)
    stream = EventStream(client, run["id"], flush_interval=0.01, max_batch_points=10, max_buffer_events=20)
    producer = threading.Thread(target=lambda: [stream.series("x", s, s) for s in range(100)])
    producer.start()
    producer.join(2.0)
    assert producer.is_alive()  # the server is down: the buffer filled and the producer waits
    assert stream.pending <= 30  # bounded: the buffer plus one batch in flight
    srv.start(timeout=90)
    producer.join(60)
    assert not producer.is_alive()
    stream.close(timeout=60)
    assert _counts(client, run["id"]) == {"x": 100}


def test_points_of_one_flush_fold_into_one_event(server_url: str) -> None:
    client = Client(server_url)
    run = client.post("/runs", {"name": "fold", "type": "training"})
    stream = EventStream(client, run["id"], flush_interval=60)
    stream.series_many([("a", s, float(s), None) for s in range(1000)])
    events, sizes = stream._fold(stream._buf, 0)  # what the next post will carry
    assert [e["type"] for e in events] == ["series"] and sizes == [1000] and events[0]["seq"] == 1000
    assert stream.flush().stored == 1000
    stream.metrics({"best": 0.5})
    stream.series("a", 1000, 1.0)
    stream.log("x")
    stream.log("y")
    events, sizes = stream._fold(stream._buf, 1000)
    assert [e["type"] for e in events] == ["metrics", "series", "log"] and sizes == [1, 1, 2]
    assert [e["seq"] for e in events] == [1001, 1002, 1004]  # the buffer position of each event's last item
    delivery = stream.close()
    assert (delivery.stored, delivery.dropped, delivery.pending) == (1004, 0, 0)
    assert _counts(client, run["id"]) == {"a": 1001}
    assert client.get(f"/runs/{run['id']}/metrics")["metrics"] == {"best": 0.5}


def test_same_batch_twice_is_stored_once(server_url: str) -> None:
    client = Client(server_url)
    run = client.post("/runs", {"name": "twice", "type": "training"})
    body = {
        "stream": "s1",
        "events": [{"seq": 1, "type": "series", "points": [{"key": "k", "step": 1, "value": 2.0}]}],
    }
    first = client.post(f"/runs/{run['id']}/events", body)
    second = client.post(f"/runs/{run['id']}/events", body)
    assert (first["applied"], first["duplicates"]) == (1, 0)
    assert (second["applied"], second["duplicates"]) == (0, 1)
    assert _counts(client, run["id"]) == {"k": 1}


def test_a_cancel_shows_in_run_status(server_url: str) -> None:
    client = Client(server_url)
    run = client.post("/runs", {"name": "to-cancel", "type": "inference"})
    stream = EventStream(client, run["id"])
    stream.status("running", worker={"node": "n1", "pid": os.getpid(), "gpu": None})
    stream.flush()
    assert stream.run_status == "running"
    client.post(f"/runs/{run['id']}/cancel")
    stream.progress(1, 10)
    stream.flush()
    assert stream.run_status == "cancelled"
    stream.close()


def test_what_cannot_be_stored_is_refused_in_the_callers_thread(server_url: str) -> None:
    client = Client(server_url)
    run = client.post("/runs", {"name": "bad", "type": "training"})
    stream = EventStream(client, run["id"])
    with pytest.raises(InvalidValue, match="'loss'"):
        stream.series("loss", 1, "fast")
    with pytest.raises(InvalidValue, match="64-bit"):
        stream.series("loss", 2**63, 1.0)
    with pytest.raises(InvalidValue, match="surrogate"):
        stream.series("lo\ud800ss", 1, 1.0)
    assert stream.pending == 0
    stream.series("loss", 1, float("nan"))  # NaN and infinity are values
    stream.metrics({"acc": float("-inf")})
    assert stream.close().stored == 2
    assert client.get(f"/runs/{run['id']}/metrics")["metrics"] == {"acc": "-Infinity"}


def test_unflushed_events_are_sent_at_exit(server_url: str, tmp_path: Path) -> None:
    client = Client(server_url)
    run = client.post("/runs", {"name": "atexit", "type": "training"})
    script = textwrap.dedent(
        f"""
        from evalhub.client import Client
        from evalhub._events import EventStream
        stream = EventStream(Client({server_url!r}), {run["id"]}, flush_interval=3600)
        stream.series_many([("late", s, 1.0, None) for s in range(2500)])
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert _counts(client, run["id"]) == {"late": 2500}


def test_batch_over_the_size_limit_is_split_not_lost(server_for: Callable[..., Any]) -> None:
    srv = server_for(max_request_bytes=20_000)
    client = Client(srv.url)
    run = client.post("/runs", {"name": "split", "type": "inference"})
    stream = EventStream(client, run["id"], flush_interval=60)
    for i in range(60):  # ~60 log events of ~600 bytes: one request would be ~36 kB
        stream.log(f"line {i} " + "x" * 500)
    stream.flush()
    stream.close()
    assert stream.dropped == 0
    lines = client.get(f"/runs/{run['id']}/logs", limit=1000)
    assert lines["total"] == 60
    assert [item["message"].split()[1] for item in lines["items"]] == [str(i) for i in range(60)]
