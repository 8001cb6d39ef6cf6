"""The embedded server launcher (evalhub._embedded, evalhub.connect() with no URL).

Each test uses its own EVALHUB_HOME and stops the (detached) server it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalhub import _embedded
from evalhub.hub import connect

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "evalhub-home"
    monkeypatch.setenv("EVALHUB_HOME", str(folder))
    monkeypatch.delenv("EVALHUB_URL", raising=False)
    monkeypatch.delenv("EVALHUB_TOKEN", raising=False)
    monkeypatch.delenv("EVALHUB_PROJECT", raising=False)
    yield folder
    _embedded.stop(folder)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_connect_starts_an_embedded_server_under_home(home: Path) -> None:
    hub = connect()
    info = json.loads((home / "server.json").read_text())
    assert hub.url == info["url"] and info["url"].startswith("http://127.0.0.1:")
    assert (home / "evalhub.db").exists() and (home / "server.log").exists()
    assert hub.client.health()["db"] == "sqlite"
    hub.register_family("embedded")
    assert hub.families()["name"].to_list() == ["embedded"]


def test_connect_twice_reuses_one_server(home: Path) -> None:
    first = connect()
    pid = json.loads((home / "server.json").read_text())["pid"]
    second = connect()
    assert second.url == first.url
    assert json.loads((home / "server.json").read_text())["pid"] == pid


def test_data_survives_a_server_restart(home: Path) -> None:
    connect().register_family("kept")
    assert _embedded.stop(home)
    hub = connect()
    assert hub.family("kept")["name"] == "kept"


def test_stale_server_json_is_replaced(home: Path) -> None:
    home.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": dead.pid}))
    hub = connect()
    info = json.loads((home / "server.json").read_text())
    assert info["pid"] != dead.pid and _pid_alive(info["pid"])
    assert hub.url == info["url"] != "http://127.0.0.1:9"
    assert hub.client.health()["status"] == "ok"


def test_live_pid_that_does_not_answer_is_replaced(home: Path) -> None:
    home.mkdir(parents=True)
    # A live process that is not a server (e.g. a reused pid): health does not answer.
    (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid()}))
    hub = connect()
    assert hub.url != "http://127.0.0.1:9"
    assert hub.client.health()["status"] == "ok"


def test_two_processes_connecting_at_once_share_one_server(home: Path) -> None:
    code = "import evalhub; print(evalhub.connect().url, flush=True)"
    env = {**os.environ, "EVALHUB_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    urls = {o[0].decode().strip() for o in outs}
    assert len(urls) == 1
    assert json.loads((home / "server.json").read_text())["url"] in urls


def test_server_outlives_the_process_that_started_it(home: Path) -> None:
    code = "import evalhub; print(evalhub.connect().url, flush=True)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=180, env={**os.environ}
    )
    url = out.stdout.decode().strip()
    hub = connect()  # the starter has exited; its server still answers and is reused
    assert hub.url == url
    assert hub.client.health()["status"] == "ok"


def test_stop_stops_the_server(home: Path) -> None:
    connect()
    pid = json.loads((home / "server.json").read_text())["pid"]
    assert _embedded.stop(home) is True
    assert not (home / "server.json").exists()
    assert not _embedded._alive(pid)
    assert _embedded.stop(home) is False
