"""Real tracking servers and MariaDB databases for the tests (imported by conftest.py and by tests).

Kept out of conftest.py: a module named ``conftest`` is not importable by name once several
folders (tests/, notebooks/) have one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

MYSQL_HOST = os.environ.get("EVALHUB_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("EVALHUB_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("EVALHUB_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("EVALHUB_TEST_MYSQL_PASSWORD", "")


class ServerProcess:
    """A real ``python -m evalhub_server`` subprocess. ``port=0`` picks a free port at the first
    start; ``restart()`` comes back on the same port and database."""

    def __init__(
        self,
        db_url: str,
        folder: Path,
        *,
        auth: str = "none",
        admin_token: str | None = None,
        max_request_bytes: int | None = None,
        artifacts: Path | None = None,
        port: int = 0,
        extra_args: list[str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self.admin_token = admin_token
        self.max_request_bytes = max_request_bytes
        self.artifacts = artifacts or folder / "artifacts"
        self.port = port
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log_path = folder / "server.log"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        ready = self.folder / f"ready-{uuid.uuid4().hex[:8]}.json"
        args = [
            sys.executable, "-m", "evalhub_server",
            "--db", self.db_url,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--artifacts", str(self.artifacts),
            "--auth", self.auth,
            "--ready-file", str(ready),
        ]  # fmt: skip
        if self.admin_token:
            args += ["--admin-token", self.admin_token]
        if self.max_request_bytes is not None:
            args += ["--max-request-bytes", str(self.max_request_bytes)]
        args += self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"evalhub server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-4000:]}"
                )
            if ready.exists():
                try:
                    self.url = json.loads(ready.read_text())["url"]
                except (ValueError, KeyError):
                    time.sleep(0.02)
                    continue
                self.port = int(self.url.rsplit(":", 1)[1])
                if _healthy(self.url):
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"evalhub server not ready after {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill=True``) and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def restart(self, kill: bool = False) -> ServerProcess:
        """Stop and start again on the same port and database."""
        self.stop(kill=kill)
        return self.start()

    def headers(self, project: str | None = None, token: str | None = None) -> dict[str, str]:
        h = {}
        if project:
            h["X-Evalhub-Project"] = project
        if token:
            h["Authorization"] = f"Bearer {token}"
        return h


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _mysql_connect(database: str | None = None) -> Any:
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        database=database,
        charset="utf8mb4",
        connect_timeout=3,
        autocommit=True,
    )


@contextmanager
def mysql_database(driver: str | None = None) -> Iterator[str]:
    """Create a fresh utf8mb4 database, yield its URL, drop it; skips if MariaDB is down. The URL
    names no driver unless asked (``"pymysql"``): the server picks the one it prefers, as for a user."""
    try:
        conn = _mysql_connect()
    except Exception as exc:  # pymysql raises OperationalError; be broad for a missing driver too
        pytest.skip(f"MariaDB/MySQL not reachable at {MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}: {exc}")
    name = f"evalhub_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        auth = MYSQL_USER + (f":{MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
        scheme = f"mysql+{driver}" if driver else "mysql"
        yield f"{scheme}://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
