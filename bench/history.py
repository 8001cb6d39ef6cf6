"""Series reads: evalhub's tracking store beside MLflow's ``get_metric_history`` on the same data.

    python bench/history.py                 # SQLite
    python bench/history.py --mysql         # also MariaDB (root@127.0.0.1:3306, a throw-away database)

Figures (median of --repeat reads, milliseconds):
  * full read of a 100,000-point series: evalhub's store (rows -> dicts, and the JSON bytes the API
    would send) beside MLflow's ``SqlAlchemyStore.get_metric_history`` (same SQLite / MariaDB backend);
  * 1,000-point downsampled read of a 1,000,000-point series: evalhub's store and over HTTP from a real
    server, beside MLflow's way to get that curve: ``get_metric_history`` of all 1,000,000 points.
Data goes in through evalhub's store directly (``write_points``) and through MLflow's store
``log_batch`` (1,000 metrics per call, its limit). Goals: full read >= 20x MLflow; downsampled < 50 ms.
Nothing here asserts; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "server"))

FULL_N = 100_000
BIG_N = 1_000_000


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, in ms, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def values(n: int) -> list[tuple[int, float]]:
    import math

    return [(s, math.sin(s / 1000.0) + s * 1e-6) for s in range(n)]


# ---- evalhub ------------------------------------------------------------------------------------


def evalhub_side(db_url: str, repeat: int, http: bool) -> dict[str, float]:
    from evalhub_server.app import dumps
    from evalhub_server.db import Database
    from evalhub_server.ingest import write_points
    from evalhub_server.migrate import upgrade
    from evalhub_server.store import Store

    db = Database(db_url)
    upgrade(db.engine)
    store = Store(db, Path(tempfile.mkdtemp()))
    pid = store.registry.project_id("bench", create=True)
    run_id = store.runs.create_run(pid, {"name": "bench", "type": "training"})["id"]
    t0 = time.perf_counter()
    for key, n in (("full", FULL_N), ("big", BIG_N)):
        pts = values(n)
        for i in range(0, n, 50_000):
            chunk = [(key, s, v, 1.0e9 + s) for s, v in pts[i : i + 50_000]]
            db.write(lambda conn, chunk=chunk: write_points(db, conn, run_id, chunk))
    insert_s = time.perf_counter() - t0
    out: dict[str, float] = {"insert_1.1M_s": insert_s}

    def full() -> dict[str, Any]:
        with db.read() as conn:
            return store.reads._series(conn, run_id, "full", FULL_N, None, None)

    out["full_read_ms"], res = timed(full, repeat)
    assert len(res["points"]) == FULL_N and not res["downsampled"]
    out["full_read_json_ms"], _ = timed(lambda: dumps(full()), repeat)
    out["downsampled_ms"], res = timed(lambda: store.reads.series(pid, run_id, "big", 1000), repeat)
    assert res["downsampled"] and 500 <= len(res["points"]) <= 1000, len(res["points"])
    if http:
        out["downsampled_http_ms"] = _http_read(db_url, run_id, repeat)
    db.dispose()
    return out


def _http_read(db_url: str, run_id: int, repeat: int) -> float:
    import httpx

    folder = Path(tempfile.mkdtemp())
    ready = folder / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalhub_server", "--db", db_url, "--port", "0", "--ready-file", str(ready),
         "--artifacts", str(folder / "a")],
        env={**os.environ, "PYTHONPATH": str(HERE.parent / "server")},
    )  # fmt: skip
    try:
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        url = json.loads(ready.read_text())["url"]
        with httpx.Client(base_url=url, headers={"X-Evalhub-Project": "bench"}) as c:

            def read() -> Any:
                r = c.get(f"/api/runs/{run_id}/series", params={"key": "big", "max_points": 1000})
                r.raise_for_status()
                return r.json()

            ms, res = timed(read, repeat)
            assert 500 <= len(res["points"]) <= 1000
            return ms
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---- MLflow -------------------------------------------------------------------------------------


def mlflow_side(db_url: str, repeat: int, big: bool) -> dict[str, float]:
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.entities import Metric
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_url, tempfile.mkdtemp())
    exp = store.create_experiment(f"bench-{uuid.uuid4().hex[:6]}")
    run = store.create_run(exp, "bench", int(time.time() * 1000), [], "bench")
    rid = run.info.run_id
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    series = [("full", FULL_N)] + ([("big", BIG_N)] if big else [])
    for key, n in series:
        pts = values(n)
        for i in range(0, n, 1000):
            metrics = [Metric(key, v, 1_000_000 + s, s) for s, v in pts[i : i + 1000]]
            store.log_batch(rid, metrics=metrics, params=[], tags=[])
    out["insert_s"] = time.perf_counter() - t0
    out["full_read_ms"], res = timed(lambda: store.get_metric_history(rid, "full"), repeat)
    assert len(res) == FULL_N
    if big:
        out["big_history_ms"], res = timed(lambda: store.get_metric_history(rid, "big"), max(1, repeat // 3))
        assert len(res) == BIG_N
    store.engine.dispose()
    return out


# ---- main ---------------------------------------------------------------------------------------


def mysql_db() -> tuple[str, Callable[[], None]]:
    import pymysql

    name = f"evalhub_bench_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()

    return f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4", drop


def report(backend: str, ev: dict[str, float], ml: dict[str, float] | None) -> None:
    print(f"\n== {backend} ==")
    print(f"insert: evalhub {ev['insert_1.1M_s']:.1f} s for 1.1M points (store, 50k per transaction)", end="")
    print(f"; MLflow {ml['insert_s']:.1f} s (log_batch x1000)" if ml else "")
    row = "{:<52} {:>12} {:>12} {:>9}"
    print(row.format("read", "evalhub ms", "MLflow ms", "ratio"))
    if ml:
        ratio = ml["full_read_ms"] / ev["full_read_ms"]
        print(
            row.format(
                "full 100k series (rows)",
                f"{ev['full_read_ms']:.1f}",
                f"{ml['full_read_ms']:.1f}",
                f"{ratio:.1f}x",
            )
        )
        ratio = ml["full_read_ms"] / ev["full_read_json_ms"]
        print(
            row.format(
                "full 100k series (+ JSON bytes)", f"{ev['full_read_json_ms']:.1f}", "", f"{ratio:.1f}x"
            )
        )
    else:
        print(row.format("full 100k series (rows)", f"{ev['full_read_ms']:.1f}", "-", ""))
    big = ml.get("big_history_ms") if ml else None
    print(
        row.format(
            "1,000-pt downsample of 1M (store) | MLflow: all 1M",
            f"{ev['downsampled_ms']:.1f}",
            f"{big:.1f}" if big else "-",
            f"{big / ev['downsampled_ms']:.0f}x" if big else "",
        )
    )
    if "downsampled_http_ms" in ev:
        print(
            row.format(
                "1,000-pt downsample of 1M (HTTP GET, real server)",
                f"{ev['downsampled_http_ms']:.1f}",
                "",
                "",
            )
        )
    print("goals: full read >= 20x MLflow's; downsampled read < 50 ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--mysql", action="store_true", help="also run on MariaDB at root@127.0.0.1:3306")
    p.add_argument("--no-mlflow-1m", action="store_true", help="skip MLflow's 1M-point insert and read")
    p.add_argument("--no-http", action="store_true")
    a = p.parse_args()
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("mlflow is not installed (pip install mlflow): printing evalhub's figures only")
        have_mlflow = False
    else:
        have_mlflow = True
    backends = ["sqlite"] + (["mysql"] if a.mysql else [])
    for backend in backends:
        tmp = Path(tempfile.mkdtemp())
        drops: list[Callable[[], None]] = []
        if backend == "sqlite":
            ev_url, ml_url = f"sqlite:///{tmp / 'evalhub.db'}", f"sqlite:///{tmp / 'mlflow.db'}"
        else:
            ev_url, d1 = mysql_db()
            ml_url, d2 = mysql_db()
            drops += [d1, d2]
        try:
            ev = evalhub_side(ev_url, a.repeat, http=not a.no_http)
            ml = mlflow_side(ml_url, a.repeat, big=not a.no_mlflow_1m) if have_mlflow else None
            report(backend, ev, ml)
        finally:
            for drop in drops:
                drop()


if __name__ == "__main__":
    main()
