"""Shared fixtures: real tracking servers (subprocesses on free ports), a fresh MariaDB database,
and an offline, throw-away environment for every test.

- ``server_url``: URL of a real server on a SQLite file, shared by the tests of one module
  (use a unique ``X-Evalhub-Project`` per test to stay isolated).
- ``server``: a ``ServerProcess`` of your own (function scope): ``.url``, ``.stop()``, ``.restart()``.
- ``mysql_url``: a fresh, uniquely named MariaDB database (dropped after); skips if MariaDB is down.
- ``db_url``: parametrized over ("sqlite", "mysql").
- ``server_for(db_url, **options)``: start a server on any database (stopped after the test).
- ``any_server``: one server per backend ("sqlite", "mysql") shared by a module's tests.
- ``hub``: ``evalhub.connect(server_url)`` in a project of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _servers import ServerProcess, mysql_database


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No hub downloads and no ~/.evalhub in any test; runs driven from the test's process
    (``EVALHUB_EXECUTOR=process``) unless a test is about the cluster: the default, a scheduler on
    evalhub's local cluster, would start a cluster per test home that outlives the test
    (test_cluster_embedded.py runs the default as a user gets it)."""
    monkeypatch.setenv("EVALHUB_EXECUTOR", "process")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("EVALHUB_HOME", str(tmp_path_factory.mktemp("evalhub-home")))


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: ``server_for(db_url, auth="token", admin_token="…", max_request_bytes=…)``."""
    started: list[ServerProcess] = []

    def start(db_url: str | None = None, **options: Any) -> ServerProcess:
        folder = tmp_path / f"server-{len(started)}"
        url = db_url or f"sqlite:///{folder / 'evalhub.db'}"
        proc = ServerProcess(url, folder, **options)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("server")
    proc = ServerProcess(f"sqlite:///{folder / 'evalhub.db'}", folder)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def server_url(_module_server: ServerProcess) -> str:
    """A real server on SQLite, shared within the module; restarted if a test stopped it."""
    if _module_server.proc is None or _module_server.proc.poll() is not None:
        _module_server.start()
    return _module_server.url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own on SQLite in tmp_path (stop/restart it freely)."""
    proc = ServerProcess(f"sqlite:///{tmp_path / 'server' / 'evalhub.db'}", tmp_path / "server")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh utf8mb4 database on the MariaDB/MySQL server, dropped after the test."""
    with mysql_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def any_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server on each backend, shared by the tests of a module (use unique projects)."""
    folder = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        proc = ServerProcess(f"sqlite:///{folder / 'evalhub.db'}", folder)
        proc.start()
        yield proc
        proc.stop()
        return
    with mysql_database() as url:
        proc = ServerProcess(url, folder)
        proc.start()
        yield proc
        proc.stop()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: a SQLite file in tmp_path, then a fresh MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'evalhub.db'}"
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def hub(server_url: str) -> Iterator[Any]:
    """``evalhub.connect(server_url)`` in a project of its own."""
    evalhub = pytest.importorskip("evalhub")
    connect = getattr(evalhub, "connect", None)
    if connect is None:
        pytest.skip("evalhub.connect is not built yet")
    h = connect(server_url, project=f"t{uuid.uuid4().hex[:10]}")
    yield h
    close = getattr(h, "close", None)
    if close is not None:
        close()


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[Any]:
    """A RayExecutor on a local Ray of this module's own (two CPUs, started at raised priority on the
    shared box), shut down after the module."""
    from evalhub.execution import RayExecutor

    ex = RayExecutor(include_dashboard=False, num_cpus=2, poll_interval=0.3, start_nice=-19)
    ex.start()
    yield ex
    ex.shutdown()
