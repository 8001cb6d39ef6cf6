"""The embedded tracking server: started on first use, shared by every kernel of this user.

Under ``EVALHUB_HOME`` (default ``~/.evalhub``): ``evalhub.db`` (SQLite), ``artifacts/``,
``server.json`` (``url``, ``pid``), ``server.log`` and ``server.lock``. The lock (``fcntl``) makes two
kernels starting at once share one server; a server that answers ``/api/health`` is reused; a stale
``server.json`` (dead pid, or nothing answering) is replaced. The server runs in its own session
so it outlives the kernel that started it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from evalhub.errors import ConnectionFailed, EvalhubError

START_TIMEOUT = 120.0
LOCK_TIMEOUT = 180.0


def home(path: str | os.PathLike[str] | None = None) -> Path:
    """The evalhub home folder (``EVALHUB_HOME``, default ``~/.evalhub``), created if missing."""
    folder = Path(path or os.environ.get("EVALHUB_HOME") or "~/.evalhub").expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (started by this very process, exited, not reaped) still "exists".
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{url}/api/health", timeout=timeout)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code == 200


def read_server_json(folder: Path) -> dict[str, Any] | None:
    """The recorded embedded server of ``folder``, or None."""
    try:
        info = json.loads((folder / "server.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "url" in info and "pid" in info else None


@contextlib.contextmanager
def file_lock(lock: Path, timeout: float = LOCK_TIMEOUT, starting: str = "evalhub is starting",
              poll: float = 0.05) -> Iterator[None]:  # fmt: skip
    """Hold an exclusive ``flock`` on ``lock`` (the one-starter-at-a-time lock of a folder); an
    EvalhubError naming the file when another process holds it for over ``timeout`` seconds."""
    with open(lock, "a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EvalhubError(
                        f"another process holds {lock} for over {timeout:.0f}s; "
                        f"if no {starting}, delete that file and retry"
                    ) from None
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _locked(folder: Path, timeout: float = LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    return file_lock(folder / "server.lock", timeout)


def _running(folder: Path) -> dict[str, Any] | None:
    info = read_server_json(folder)
    if info and _alive(int(info["pid"])) and _healthy(str(info["url"])):
        return info
    return None


def _start(folder: Path) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("evalhub_server") is None or importlib.util.find_spec("fastapi") is None:
        raise EvalhubError(
            "the embedded tracking server needs the server extra: pip install 'evalhub[server]' "
            "(or join a shared server: evalhub.connect(url, token=...))"
        )
    ready = folder / "server.ready.json"
    ready.unlink(missing_ok=True)
    (folder / "server.json").unlink(missing_ok=True)
    artifacts = folder / "artifacts"
    artifacts.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "evalhub_server",
        "--db",
        f"sqlite:///{folder / 'evalhub.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--artifacts",
        str(artifacts),
        "--ready-file",
        str(ready),
    ]
    logfile = folder / "server.log"
    with open(logfile, "ab") as log:
        log.write(
            f"\n--- evalhub embedded server starting {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode()
        )
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the kernel that started it
            close_fds=True,
            cwd=str(folder),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace").splitlines()[-15:]
            raise ConnectionFailed(
                f"the embedded tracking server exited with code {proc.returncode}; see {logfile}:\n"
                + "\n".join(tail)
            )
        try:
            info = json.loads(ready.read_text())
            if info.get("url") and _healthy(str(info["url"])):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise ConnectionFailed(
            f"the embedded tracking server did not start within {START_TIMEOUT:.0f}s; see {logfile}"
        )
    record = {
        "url": str(info["url"]).rstrip("/"),
        "pid": proc.pid,
        "db": f"sqlite:///{folder / 'evalhub.db'}",
        "started_at": time.time(),
    }
    tmp = folder / "server.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / "server.json")
    ready.unlink(missing_ok=True)
    return record


def ensure_server(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Reuse the embedded server of the home folder, or start one. Returns ``{"url", "pid", ...}``."""
    folder = home(path)
    info = _running(folder)  # fast path: no lock needed to reuse a healthy server
    if info:
        return info
    with _locked(folder):
        return _running(folder) or _start(folder)


def stop(path: str | os.PathLike[str] | None = None, timeout: float = 10.0) -> bool:
    """Stop the embedded server of the home folder (True if one was running)."""
    folder = home(path)
    with _locked(folder):
        info = read_server_json(folder)
        if not info:
            return False
        pid = int(info["pid"])
        was = _alive(pid)
        if was:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        (folder / "server.json").unlink(missing_ok=True)
        return was


__all__ = ["ensure_server", "home", "read_server_json", "stop"]
