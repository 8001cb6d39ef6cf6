"""Concurrent writers: 8 threads posting to one run at once lose nothing and double nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from _servers import ServerProcess

pytestmark = pytest.mark.slow

THREADS = 8
POINTS_PER_THREAD = 5_000
BATCH = 250


def _writer(url: str, project: str, run_id: int, t: int, errors: list[str]) -> None:
    """One writer, one stream; each batch is posted twice (a retry) to check dedupe under load."""
    with httpx.Client(base_url=url, headers={"X-Evalhub-Project": project}, timeout=120) as http:
        seq = 0
        for start in range(0, POINTS_PER_THREAD, BATCH):
            seq += 1
            points = [
                # Threads interleave their steps on shared keys: thread t writes steps t, t+8, ...
                {
                    "key": f"k{(start + i) % 3}",
                    "step": (start + i) * THREADS + t,
                    "value": float(t * 1_000_000 + start + i),
                }
                for i in range(BATCH)
            ]
            body = {"stream": f"writer-{t}", "events": [{"seq": seq, "type": "series", "points": points}]}
            for attempt in range(2):
                r = http.post(f"/api/runs/{run_id}/events", json=body)
                if r.status_code != 200:
                    errors.append(f"thread {t}: {r.status_code} {r.text[:300]}")
                    return
                expected = (1, 0) if attempt == 0 else (0, 1)
                got = (r.json()["applied"], r.json()["duplicates"])
                if got != expected:
                    errors.append(f"thread {t} seq {seq} attempt {attempt}: {got} != {expected}")


def test_eight_threads_into_one_run_store_everything(
    db_url: str, server_for: Callable[..., ServerProcess]
) -> None:
    server = server_for(db_url)
    project = f"c{uuid.uuid4().hex[:8]}"
    run_id = httpx.post(
        f"{server.url}/api/runs", json={"name": "busy"}, headers={"X-Evalhub-Project": project}
    ).json()["id"]
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(server.url, project, run_id, t, errors))
        for t in range(THREADS)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    keys = httpx.get(
        f"{server.url}/api/runs/{run_id}/series/keys", headers={"X-Evalhub-Project": project}
    ).json()["keys"]
    assert sum(k["count"] for k in keys) == THREADS * POINTS_PER_THREAD == 40_000
    top = THREADS * POINTS_PER_THREAD - 1
    by_key = {k["key"]: k for k in keys}
    # the highest step overall: thread 7's last point, on key k{4999 % 3}
    last_key = by_key[f"k{(POINTS_PER_THREAD - 1) % 3}"]
    assert last_key["last_step"] == top and last_key["max_step"] == top
    assert min(k["min_step"] for k in keys) == 0
    full = httpx.get(
        f"{server.url}/api/runs/{run_id}/series",
        params={"key": "k0", "max_points": 10_000},
        headers={"X-Evalhub-Project": project},
    ).json()
    assert full["total"] == by_key["k0"]["count"] and full["downsampled"] is True


def test_two_server_processes_on_one_sqlite_file(
    server_for: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Writers in two processes contend for SQLite's lock: busy waits and retries, nothing lost."""
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = server_for(db), server_for(db)
    project = f"c{uuid.uuid4().hex[:8]}"
    run_id = httpx.post(
        f"{first.url}/api/runs", json={"name": "busy"}, headers={"X-Evalhub-Project": project}
    ).json()["id"]
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=((first if t % 2 else second).url, project, run_id, t, errors))
        for t in range(THREADS)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    keys = httpx.get(
        f"{second.url}/api/runs/{run_id}/series/keys", headers={"X-Evalhub-Project": project}
    ).json()["keys"]
    assert sum(k["count"] for k in keys) == THREADS * POINTS_PER_THREAD
