"""One bad value costs only itself: poison values amid good data, through the real client and server
(SQLite and MariaDB). What cannot be stored is refused per field with a 422 naming the field and the
limit; the client isolates it, logs it on the run and stores everything else."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from evalhub._events import EventStream
from evalhub.client import Client
from evalhub.hub import Hub


@pytest.fixture
def server(db_url: str, server_for: Callable[..., Any]) -> Any:
    return server_for(db_url)


def _http(server: Any) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"X-Evalhub-Project": f"p{uuid.uuid4().hex[:8]}"}, timeout=60
    )


def _raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def test_a_step_outside_int64_amid_good_points_costs_only_itself(server: Any) -> None:
    hub = Hub(Client(server.url, project=f"t{uuid.uuid4().hex[:8]}"))
    run = hub.init_run("poisoned", system_metrics=False)
    for step in range(1000):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    with pytest.warns(UserWarning, match="64-bit"):
        run.log({"loss": 0.5}, step=2**63)
    for step in range(1000, 2000):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    started = time.monotonic()
    delivery = run.finish()
    assert time.monotonic() - started < 20  # prompt, not its whole timeout
    assert (delivery.stored, delivery.dropped, delivery.pending) == (delivery.stored, 0, 0)
    assert run.dropped == 1
    assert hub.run(run.id)["status"] == "completed"
    assert hub.series_keys(run.id).row(0, named=True)["count"] == 2000
    assert any("step 9223372036854775808" in line["message"] for line in hub.logs(run.id))


def test_a_lone_surrogate_in_a_log_line_is_isolated_and_logged(server: Any) -> None:
    client = Client(server.url, project=f"s{uuid.uuid4().hex[:8]}")
    rid = client.post("/runs", {"name": "r", "type": "training"})["id"]
    stream = EventStream(client, rid, flush_interval=60)
    for i in range(50):
        stream.series("x", i, float(i))
    stream.log("fine before")
    stream.log("broken \ud800 line")
    stream.log("fine after")
    for i in range(50, 100):
        stream.series("x", i, float(i))
    delivery = stream.close()
    messages = [line["message"] for line in client.get(f"/runs/{rid}/logs")["items"]]
    assert (delivery.stored, delivery.dropped) == (103, 1), (delivery, messages)  # 100 points, 2 lines, the note
    assert "not a valid string" in delivery.reasons[0] or "unicode" in delivery.reasons[0].lower()
    messages = [line["message"] for line in client.get(f"/runs/{rid}/logs")["items"]]
    assert messages[:2] == ["fine before", "fine after"]
    assert messages[2].startswith("evalhub dropped log line 'broken \\ud800 line'")
    assert client.get(f"/runs/{rid}/series/keys")["keys"][0]["count"] == 100


def test_a_text_over_the_field_limit_is_refused_and_the_rest_of_the_samples_stored(server: Any) -> None:
    client = Client(server.url, project=f"b{uuid.uuid4().hex[:8]}")
    limit = client.get("/health")["max_text_bytes"]
    rid = client.post("/runs", {"name": "r", "type": "inference"})["id"]
    stream = EventStream(client, rid, stream="attempt-1", attempt=1, flush_interval=60)
    stream.status("running")
    good = [{"sample_key": f"k{i}", "index": i, "output": f"answer {i}"} for i in range(40)]
    huge = {"sample_key": "huge", "index": 99, "output": "x" * (20 * 1024 * 1024)}  # 20 MiB
    stream.samples([*good[:20], huge, *good[20:]])
    delivery = stream.flush()
    assert delivery.dropped == 1 and "sample 'huge'" in delivery.reasons[0]
    assert f"limit of {limit} bytes" in delivery.reasons[0]
    assert client.get(f"/runs/{rid}/samples", limit=1000)["total"] == 40
    stream.close()


def test_every_storage_limit_is_a_422_naming_the_field(server: Any) -> None:
    http = _http(server)
    rid = http.post("/api/runs", json={"name": "r"}).json()["id"]
    limit = http.get("/api/health").json()["max_text_bytes"]

    def refused(body: str, field: str, *words: str) -> None:
        r = _raw(http, f"/api/runs/{rid}/events", body)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["field"] == field, err
        for word in words:
            assert word in err["message"], err

    point = '{"stream": "s", "events": [{"seq": 1, "type": "series", "points": [{"key": "l", "step": %s, "value": 1}]}]}'
    refused(point % (2**63), "body.events.0.points.0.step", "9223372036854775807")
    refused(point % (-(2**63) - 1), "body.events.0.points.0.step")
    refused(
        '{"stream": "s", "events": [{"seq": 1, "type": "log", "lines": [{"message": "a\\ud800"}]}]}',
        "body.events.0.lines.0.message",
    )
    refused(
        json.dumps(
            {"stream": "s", "events": [{"seq": 1, "type": "log", "lines": [{"message": "y" * (limit + 1)}]}]}
        ),
        "body.events.0.lines.0.message",
        str(limit),
    )
    refused(
        '{"stream": "s", "events": [{"seq": 9223372036854775808, "type": "progress", "done": 1}]}',
        "body.events.0.seq",
    )
    r = http.post("/api/families", json={"name": "f", "metadata": {"n": 2**64}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.metadata"
    assert http.get(f"/api/runs/{2**63}").status_code == 422
    assert http.get("/api/runs", params={"offset": 2**63}).status_code == 422
    assert http.get(f"/api/runs/{rid}/series", params={"key": "l", "min_step": 2**63}).status_code == 422
    # nothing of the refused batches was stored
    assert http.get(f"/api/runs/{rid}/series/keys").json()["keys"] == []
    assert http.get(f"/api/runs/{rid}/logs").json()["total"] == 0
