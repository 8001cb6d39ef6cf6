"""Ingest benchmark: series points per second through evalhub's client, beside MLflow's.

evalhub: ``run.log({"loss": v}, step=i)`` in a loop, then ``run.finish()`` (which returns once the
server has acknowledged every point), into one run of a real ``evalhub_server`` on a SQLite file and
on MariaDB. MLflow: ``MlflowClient.log_batch`` of 1000 metrics (its per-call maximum) into a local
``mlflow server`` on SQLite. MLflow is measured on fewer points (``--mlflow-points``) because at a
million it takes very long; points/s are compared. Both servers run on this machine, one at a time.

    python bench/ingest.py                       # 1,000,000 evalhub points, 50,000 MLflow points
    python bench/ingest.py --points 200000 --no-mysql

Needs ``pip install mlflow`` (bench only, not a package extra) and MariaDB on 127.0.0.1:3306 for
the MariaDB figure. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_evalhub(db_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = folder / f"ready-{uuid.uuid4().hex}.json"
    cmd = [
        sys.executable, "-m", "evalhub_server", "--db", db_url, "--host", "127.0.0.1", "--port", "0",
        "--artifacts", str(folder / "artifacts"), "--ready-file", str(ready),
    ]  # fmt: skip
    log = open(folder / "evalhub-server.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit((folder / "evalhub-server.log").read_text()[-2000:])
        try:
            return proc, str(json.loads(ready.read_text())["url"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("evalhub server did not start")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_evalhub(url: str, points: int) -> tuple[float, int]:
    """Seconds to log and store ``points`` points through run.log, and the count the server holds."""
    from evalhub.client import Client
    from evalhub.hub import Hub

    hub = Hub(Client(url))
    run = hub.init_run("bench-ingest", system_metrics=False)
    t0 = time.perf_counter()
    log = run.log
    for i in range(points):
        log({"loss": 1.0 / (i + 1)}, step=i)
    run.finish(timeout=None)
    elapsed = time.perf_counter() - t0
    keys = hub.client.get(f"/runs/{run.id}/series/keys")["keys"]
    stored = sum(k["count"] for k in keys)
    hub.close()
    return elapsed, stored


def bench_mlflow(points: int, folder: Path, batch: int = 1000) -> tuple[float, int]:
    """Seconds to log ``points`` metrics via MlflowClient.log_batch into a local mlflow server (SQLite)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    port = _free_port()
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    cmd = [
        mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root", str(folder / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    log = open(folder / "mlflow-server.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "mlflow server did not start:\n" + (folder / "mlflow-server.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        client = MlflowClient(tracking_uri=url)
        exp_id = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
        run_id = client.create_run(exp_id).info.run_id
        t0 = time.perf_counter()
        buffer: list[Any] = []
        for i in range(points):
            buffer.append(Metric("loss", 1.0 / (i + 1), int(time.time() * 1000), i))
            if len(buffer) == batch:
                client.log_batch(run_id, metrics=buffer)
                buffer = []
        if buffer:
            client.log_batch(run_id, metrics=buffer)
        client.set_terminated(run_id)
        elapsed = time.perf_counter() - t0
        stored = len(client.get_metric_history(run_id, "loss"))
        return elapsed, stored
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _mariadb_url() -> tuple[str, Any, str] | None:
    try:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    except Exception as exc:
        print(f"MariaDB unavailable, skipped: {exc}")
        return None
    name = f"evalhub_bench_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return f"mysql+pymysql://root@127.0.0.1:3306/{name}", conn, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="evalhub points (default 1,000,000)")
    parser.add_argument("--mlflow-points", type=int, default=50_000, help="MLflow points (default 50,000)")
    parser.add_argument("--no-mysql", action="store_true", help="skip the MariaDB figure")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")
    args = parser.parse_args()

    rows: list[tuple[str, int, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp:
        folder = Path(tmp)
        proc, url = _start_evalhub(f"sqlite:///{folder / 'evalhub.db'}", folder)
        try:
            elapsed, stored = bench_evalhub(url, args.points)
            rows.append(("evalhub run.log -> server (SQLite)", args.points, elapsed, stored))
        finally:
            _stop(proc)
        if not args.no_mysql:
            maria = _mariadb_url()
            if maria:
                db_url, conn, name = maria
                try:
                    proc, url = _start_evalhub(db_url, folder)
                    try:
                        elapsed, stored = bench_evalhub(url, args.points)
                        rows.append(("evalhub run.log -> server (MariaDB)", args.points, elapsed, stored))
                    finally:
                        _stop(proc)
                finally:
                    with conn.cursor() as cur:
                        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                    conn.close()
        if not args.no_mlflow:
            elapsed, stored = bench_mlflow(args.mlflow_points, folder)
            rows.append(
                ("MLflow log_batch(1000) -> mlflow server (SQLite)", args.mlflow_points, elapsed, stored)
            )

    print(f"\n{'workload':<50} {'points':>10} {'stored':>10} {'seconds':>9} {'points/s':>11}")
    for name, n, elapsed, stored in rows:
        print(f"{name:<50} {n:>10,} {stored:>10,} {elapsed:>9.2f} {n / elapsed:>11,.0f}")
    mlflow = [r for r in rows if r[0].startswith("MLflow")]
    if mlflow:
        base = mlflow[0][1] / mlflow[0][2]
        for name, n, elapsed, _ in rows:
            if not name.startswith("MLflow"):
                print(f"{name}: {n / elapsed / base:.1f}x MLflow's points/s")


if __name__ == "__main__":
    main()
