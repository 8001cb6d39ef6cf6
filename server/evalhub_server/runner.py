"""Run the server with uvicorn: ``serve(settings, workers=1)``; ``main(argv)`` is the command line.

With ``workers > 1`` the schema is upgraded once, then that many worker processes (spawned, each its
own uvicorn server and ``create_app``) accept connections on one socket, supervised by this process:
a worker that dies is replaced, SIGTERM/SIGINT stop them all. Several processes on one database are
safe: a run changes state in one conditional UPDATE, and event batches are idempotent per stream.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_ARTIFACT_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TEXT_BYTES,
    ServerSettings,
    default_db_url,
)

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue

MAX_WORKERS = 64


def _write_ready(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, path)


def _bind(settings: ServerSettings) -> tuple[socket.socket, str]:
    """The listening socket (port 0 picks a free port) and the URL clients use."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP named: asyncio switches Nagle's algorithm off (TCP_NODELAY) only on connections whose
    # socket says so, and an accepted connection takes the listening socket's; with proto 0 every answer
    # on a kept-alive connection waited ~40 ms for the client's delayed ACK of its head
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '') else host}:{port}"
    return sock, url


def _uvicorn_server(
    settings: ServerSettings, app: Any, on_started: Callable[[], None]
) -> Any:  # a uvicorn.Server; Any so that uvicorn stays a lazy import
    import uvicorn

    config = uvicorn.Config(app, log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=5)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                on_started()

    return _Server(config)


def serve(settings: ServerSettings, workers: int = 1) -> None:
    """Upgrade the schema, bind (port 0 picks a free port), write the ready file once accepting
    connections (every worker, with ``workers > 1``), and serve until interrupted."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    if workers > 1:
        _serve_workers(settings, workers)
        return
    from .app import create_app

    app = create_app(settings)
    sock, url = _bind(settings)

    def started() -> None:
        if settings.ready_file is not None:
            _write_ready(Path(settings.ready_file), url)
        print(
            f"evalhub server listening on {url} (db: {app.state.store.db.backend})",
            file=sys.stderr,
            flush=True,
        )

    try:
        _uvicorn_server(settings, app, started).run(sockets=[sock])
    finally:
        app.state.store.db.dispose()
        sock.close()


def _worker_main(settings: ServerSettings, sock: socket.socket, ready: Queue[int]) -> None:
    """One worker process: its own app over its own connection pool, on the shared socket."""
    from .app import create_app

    app = create_app(settings)  # the schema is current by now: this only reads its revision
    try:
        _uvicorn_server(settings, app, lambda: ready.put(os.getpid())).run(sockets=[sock])
    finally:
        app.state.store.db.dispose()


def _serve_workers(settings: ServerSettings, workers: int, start_timeout: float = 120.0) -> None:
    from .db import Database
    from .migrate import upgrade

    db = Database(settings.db_url)
    try:
        upgrade(db.engine)  # once, before any worker opens the database
        backend = db.backend
    finally:
        db.dispose()
    sock, url = _bind(settings)
    ctx = multiprocessing.get_context("spawn")  # no threads or pools of this process in the workers
    ready: Queue[int] = ctx.Queue()
    stop = False

    def on_signal(_sig: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def spawn() -> SpawnProcess:
        proc = ctx.Process(target=_worker_main, args=(settings, sock, ready), name="evalhub-server-worker")
        proc.start()
        return proc

    procs = [spawn() for _ in range(workers)]
    try:
        started: set[int] = set()
        deadline = time.monotonic() + start_timeout
        while len(started) < workers and not stop:
            dead = [p for p in procs if p.exitcode is not None]
            if dead:
                raise SystemExit(f"evalhub server: a worker exited with {dead[0].exitcode} while starting")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"evalhub server: {workers - len(started)} workers not ready after {start_timeout}s"
                )
            try:
                started.add(ready.get(timeout=0.2))
            except queue.Empty:
                continue
        if not stop:
            if settings.ready_file is not None:
                _write_ready(Path(settings.ready_file), url)
            print(
                f"evalhub server listening on {url} (db: {backend}, {workers} workers, pid {os.getpid()})",
                file=sys.stderr,
                flush=True,
            )
        while not stop:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.exitcode is not None and not stop:
                    print(
                        f"evalhub server: worker {proc.pid} exited with {proc.exitcode}; starting another",
                        file=sys.stderr,
                        flush=True,
                    )
                    procs[i] = spawn()
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for proc in procs:
            proc.join(timeout=10)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evalhub_server", description="evalhub tracking server")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite under EVALHUB_HOME)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (see --ready-file)")
    p.add_argument(
        "--artifacts",
        default=None,
        help="artifact folder or fsspec URL, e.g. s3://bucket/prefix (default: next to the SQLite file)",
    )
    p.add_argument("--auth", choices=("none", "token"), default="none")
    p.add_argument("--admin-token", default=None, help="or EVALHUB_ADMIN_TOKEN")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument(
        "--max-artifact-bytes",
        type=int,
        default=DEFAULT_MAX_ARTIFACT_BYTES,
        help="largest artifact one upload may carry (streamed to disk, not held in memory)",
    )
    p.add_argument(
        "--max-text-bytes",
        type=int,
        default=DEFAULT_MAX_TEXT_BYTES,
        help="largest text field (prompt, output, log line, JSON object) a request may carry",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        help="seconds a running attempt may stay silent before it is declared lost (re-queued or failed)",
    )
    p.add_argument("--ready-file", default=None, help='write {"url", "pid"} here once accepting connections')
    p.add_argument("--log-level", default="warning")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"server processes on one socket (1-{MAX_WORKERS}); several suit MySQL/MariaDB",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> ServerSettings:
    return _settings(parser().parse_args(argv))


def _settings(a: argparse.Namespace) -> ServerSettings:
    kwargs: dict[str, Any] = {
        "db_url": a.db or default_db_url(),
        "host": a.host,
        "port": a.port,
        "auth": a.auth,
        "admin_token": a.admin_token,
        "artifacts_dir": a.artifacts or None,
        "max_request_bytes": a.max_request_bytes,
        "max_artifact_bytes": a.max_artifact_bytes,
        "max_text_bytes": a.max_text_bytes,
        "lease_s": a.lease,
        "ready_file": Path(a.ready_file) if a.ready_file else None,
        "log_level": a.log_level,
    }
    try:
        return ServerSettings(**kwargs)
    except ValueError as exc:
        parser().error(str(exc))
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evalhub_server ...``"""
    a = parser().parse_args(argv)
    if not 1 <= a.workers <= MAX_WORKERS:
        parser().error(f"--workers must be between 1 and {MAX_WORKERS}, got {a.workers}")
    serve(_settings(a), workers=a.workers)
    return 0
