"""The servers a benchmark measures: a real ``evalhub server`` and a real ``mlflow server`` (each a
subprocess on a free port, one backend each), and throw-away MariaDB databases. Imported by the
scripts of bench/ (run as ``python bench/<script>.py``, so this folder is on ``sys.path``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MARIADB = "root@127.0.0.1:3306"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def evalhub_server(db_url: str, folder: Path, *args: str) -> Iterator[str]:
    """A real evalhub server (``python -m evalhub_server``) on ``db_url``; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / f"ready-{uuid.uuid4().hex[:8]}.json"
    cmd = [
        sys.executable, "-m", "evalhub_server", "--db", db_url, "--host", "127.0.0.1", "--port", "0",
        "--artifacts", str(folder / "artifacts"), "--ready-file", str(ready), *args,
    ]  # fmt: skip
    log = folder / "evalhub-server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"evalhub server exited:\n{log.read_text()[-3000:]}")
            try:
                url = str(json.loads(ready.read_text())["url"])
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise SystemExit("evalhub server did not start in 120 s") from None
                time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


def mlflow_bin() -> str:
    found = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if not found:
        raise SystemExit("mlflow is not installed: pip install mlflow (a bench-only dependency)")
    return found


@contextmanager
def mlflow_server(backend_uri: str, folder: Path, workers: int = 1) -> Iterator[str]:
    """A real ``mlflow server`` on ``backend_uri`` (its SQLAlchemy tracking store); yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        mlflow_bin(), "server", "--backend-store-uri", backend_uri,
        "--default-artifact-root", str(folder / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    log = folder / "mlflow-server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlflow server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


@contextmanager
def mariadb_database(prefix: str = "evalhub_bench", driver: str | None = None) -> Iterator[str | None]:
    """A fresh utf8mb4 database on the local MariaDB (dropped after); None when it is not reachable.
    Its URL names ``driver`` (SQLAlchemy's name: pymysql, mariadbconnector), else the one evalhub's
    server picks for a bare ``mysql://`` (MariaDB's connector where installed, else pymysql)."""
    try:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    except Exception as exc:
        print(f"MariaDB unavailable, skipped: {exc}")
        yield None
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        from evalhub_server.db import mysql_driver, normalize_url

        yield normalize_url(f"mysql+{driver or mysql_driver()}://{MARIADB}/{name}")
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def machine() -> str:
    """One line on the machine the figures come from."""
    return f"{os.cpu_count()} CPU cores (shared), Python {sys.version.split()[0]}"
