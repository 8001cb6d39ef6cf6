"""Run the server with uvicorn: ``serve(settings)``; ``main(argv)`` is the command line."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import DEFAULT_MAX_REQUEST_BYTES, ServerSettings, default_db_url


def _write_ready(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, path)


def serve(settings: ServerSettings) -> None:
    """Upgrade the schema, bind (port 0 picks a free port), write the ready file once accepting
    connections, and serve until interrupted."""
    import uvicorn

    from .app import create_app

    app = create_app(settings)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '') else host}:{port}"
    config = uvicorn.Config(app, log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=5)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if settings.ready_file is not None and not self.should_exit:
                _write_ready(Path(settings.ready_file), url)
            print(
                f"evalhub server listening on {url} (db: {app.state.store.db.backend})",
                file=sys.stderr,
                flush=True,
            )

    try:
        _Server(config).run(sockets=[sock])
    finally:
        app.state.store.db.dispose()
        sock.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evalhub_server", description="evalhub tracking server")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite under EVALHUB_HOME)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (see --ready-file)")
    p.add_argument("--artifacts", default=None, help="artifact folder (default: next to the SQLite file)")
    p.add_argument("--auth", choices=("none", "token"), default="none")
    p.add_argument("--admin-token", default=None, help="or EVALHUB_ADMIN_TOKEN")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument("--ready-file", default=None, help='write {"url", "pid"} here once accepting connections')
    p.add_argument("--log-level", default="warning")
    return p


def parse_args(argv: Sequence[str] | None = None) -> ServerSettings:
    a = parser().parse_args(argv)
    kwargs: dict[str, Any] = {
        "db_url": a.db or default_db_url(),
        "host": a.host,
        "port": a.port,
        "auth": a.auth,
        "admin_token": a.admin_token,
        "artifacts_dir": Path(a.artifacts) if a.artifacts else None,
        "max_request_bytes": a.max_request_bytes,
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
    serve(parse_args(argv))
    return 0
