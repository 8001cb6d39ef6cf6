"""The server's side of resuming and reusing work, on SQLite and MariaDB: a running attempt reuses a
completed run of the same work key (metrics and samples copied, ``reused_from`` set, aligned with its
experiment), the request cache per project, and an experiment resumed (failed and cancelled runs
queued again as their next attempt, completed ones kept)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from evalhub.client import Client
from evalhub.errors import Conflict

KEY = "a" * 64


@pytest.fixture
def client(any_server: Any) -> Iterator[Client]:
    c = Client(any_server.url, project=f"r{uuid.uuid4().hex[:8]}")
    yield c
    c.close()


def _experiment(client: Client, n: int, max_attempts: int = 3) -> tuple[int, list[int]]:
    runs = [
        {"name": f"r{i}", "type": "offline_eval", "task": "t", "max_attempts": max_attempts} for i in range(n)
    ]
    exp = client.post("/experiments", {"name": "e", "config": {"max_attempts": max_attempts}, "runs": runs})
    return int(exp["id"]), [int(r["id"]) for r in exp["runs"]]


def _events(client: Client, run_id: int, events: list[dict[str, Any]], attempt: int = 1) -> dict[str, Any]:
    body = {"stream": f"attempt-{attempt}", "attempt": attempt,
            "events": [{"seq": i + 1, **e} for i, e in enumerate(events)]}  # fmt: skip
    answer: dict[str, Any] = client.post(f"/runs/{run_id}/events", body)
    return answer


def _finish(client: Client, run_id: int, key: str) -> None:
    samples = [{"sample_key": f"k{i}", "index": i, "output": str(i), "primary_score": float(i % 2),
                "scores": {"acc": float(i % 2)}} for i in range(5)]  # fmt: skip
    _events(client, run_id, [
        {"type": "status", "status": "running", "work_key": key},
        {"type": "progress", "done": 5, "total": 5},
        {"type": "metrics", "values": {"acc": 0.4}, "higher_is_better": {"acc": True}},
        {"type": "samples", "samples": samples},
        {"type": "status", "status": "completed"},
    ])  # fmt: skip


def test_a_running_attempt_reuses_a_completed_run_of_the_same_work(client: Client) -> None:
    exp, (first, second) = _experiment(client, 2)
    _finish(client, first, KEY)
    assert client.get(f"/runs/{first}")["work_key"] == KEY
    _events(client, second, [{"type": "status", "status": "running"}])
    answer = client.post(f"/runs/{second}/reuse", {"attempt": 1, "work_key": KEY})
    assert answer["reused"] is True
    run = answer["run"]
    assert (run["status"], run["reused_from"], run["work_key"]) == ("completed", first, KEY)
    assert run["progress"] == {"done": 5, "total": 5}
    assert client.get(f"/runs/{second}/metrics")["metrics"] == {"acc": 0.4}
    assert client.get(f"/runs/{second}/samples")["total"] == 5
    aligned = client.get(f"/experiments/{exp}/samples", task="t")
    assert aligned["total"] == 5 and all(
        set(item["outputs"]) == {str(first), str(second)} for item in aligned["items"]
    )
    assert any(
        "reused the results of run" in line["message"] for line in client.get(f"/runs/{second}/logs")["items"]
    )
    compared = {r["run_id"]: r for r in client.get(f"/experiments/{exp}/compare")["runs"]}
    assert compared[second]["metrics"] == {"acc": 0.4}


def test_without_a_match_the_key_is_recorded_and_the_attempt_goes_on(client: Client) -> None:
    _, (run,) = _experiment(client, 1)
    _events(client, run, [{"type": "status", "status": "running"}])
    answer = client.post(f"/runs/{run}/reuse", {"attempt": 1, "work_key": "b" * 64})
    assert answer["reused"] is False and answer["run"]["status"] == "running"
    assert answer["run"]["work_key"] == "b" * 64 and answer["run"]["reused_from"] is None
    with pytest.raises(Conflict, match="attempt 2 is not the run's current attempt"):
        client.post(f"/runs/{run}/reuse", {"attempt": 2, "work_key": KEY})


def test_a_reused_run_is_found_through_its_original_and_archived_runs_are_not(client: Client) -> None:
    _, (first, second, third) = _experiment(client, 3)
    _finish(client, first, KEY)
    _events(client, second, [{"type": "status", "status": "running"}])
    client.post(f"/runs/{second}/reuse", {"attempt": 1, "work_key": KEY})
    client.request("DELETE", f"/runs/{first}")
    _events(client, third, [{"type": "status", "status": "running"}])
    answer = client.post(f"/runs/{third}/reuse", {"attempt": 1, "work_key": KEY})
    assert answer["reused"] and answer["run"]["reused_from"] == first  # through the reused copy


def test_the_request_cache_keeps_answers_per_project(client: Client, any_server: Any) -> None:
    _, (run,) = _experiment(client, 1)
    entries = [{"key": f"{i:064x}", "value": f"[{i}, true]"} for i in range(1500)]
    _events(client, run, [{"type": "status", "status": "running"}, {"type": "cache", "entries": entries[:800]},
                          {"type": "cache", "entries": entries[800:]}])  # fmt: skip
    keys = [e["key"] for e in entries[:1000]]
    assert client.post("/cache/lookup", {"keys": keys})["values"] == {
        e["key"]: e["value"] for e in entries[:1000]
    }
    assert client.post("/cache/lookup", {"keys": ["f" * 64]})["values"] == {}
    other = Client(any_server.url, project=f"o{uuid.uuid4().hex[:8]}")
    assert other.post("/cache/lookup", {"keys": keys[:5]})["values"] == {}
    other.close()


def test_resume_queues_failed_and_cancelled_runs_again_and_keeps_completed_ones(client: Client) -> None:
    exp, (done, failed, cancelled, queued) = _experiment(client, 4, max_attempts=2)
    _finish(client, done, KEY)
    _events(client, failed, [{"type": "status", "status": "running"}, {"type": "progress", "done": 3, "total": 5},
                             {"type": "status", "status": "failed", "error": "boom"}])  # fmt: skip
    client.post(f"/runs/{cancelled}/cancel")
    resumed = client.post(f"/experiments/{exp}/resume")
    assert resumed["counts"]["queued"] == 3 and resumed["counts"]["completed"] == 1
    runs = {r["id"]: r for r in client.paged(f"/experiments/{exp}/runs")}
    assert runs[done]["status"] == "completed" and runs[done]["attempt"] == 1
    for run_id in (failed, cancelled):
        run = runs[run_id]
        assert (run["status"], run["attempt"], run["max_attempts"], run["error"]) == ("queued", 2, 3, None)
        assert run["progress"]["done"] == 0
        assert any("resumed" in line["message"] for line in client.get(f"/runs/{run_id}/logs")["items"])
    assert runs[queued]["attempt"] == 1  # it was waiting: nothing to resume
    # the new attempt writes; the old one is refused
    assert (
        _events(client, failed, [{"type": "status", "status": "running"}], attempt=2)["run_status"]
        == "running"
    )
