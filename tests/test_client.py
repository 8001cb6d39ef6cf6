"""evalhub.client.Client: retries, error bodies, headers, paging.

Retry behaviour is checked against a real local HTTP server (http.server in a thread) scripted to
fail; error mapping and paging against the real tracking server (conftest's ``server_url``).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evalhub.client import Client, check_number
from evalhub.errors import Conflict, ConnectionFailed, InvalidInput, InvalidValue, NotFound, ServerError


class Scripted:
    """A real HTTP server answering from a script of (status, body) and recording requests."""

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, payload = outer.script.pop(0) if outer.script else (200, {"ok": True})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(script: list[tuple[int, Any]]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _err(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def test_retries_5xx_then_succeeds(scripted: Any) -> None:
    srv = scripted([(503, _err("internal", "busy")), (500, _err("internal", "oops")), (200, {"x": 1})])
    client = Client(srv.url, retries=3, backoff=0.01)
    assert client.get("/thing") == {"x": 1}
    assert len(srv.requests) == 3


def test_gives_up_after_retries_with_server_error(scripted: Any) -> None:
    srv = scripted([(500, _err("internal", "db down"))] * 3)
    client = Client(srv.url, retries=2, backoff=0.01)
    with pytest.raises(ServerError, match="db down") as info:
        client.get("/thing")
    assert info.value.status == 500
    assert len(srv.requests) == 3


def test_4xx_is_not_retried_and_names_the_field(scripted: Any) -> None:
    srv = scripted([(422, _err("invalid", "name must not be empty", "body.name"))])
    client = Client(srv.url, retries=5, backoff=0.01)
    with pytest.raises(InvalidInput) as info:
        client.post("/families", {"name": ""})
    assert len(srv.requests) == 1
    assert info.value.field == "body.name"
    assert "body.name" in str(info.value)
    assert "\n" not in str(info.value)


def test_connection_refused_raises_connection_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", retries=1, backoff=0.01)
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        client.get("/health")


def test_sends_token_and_project_headers(scripted: Any) -> None:
    srv = scripted([(200, {})])
    Client(srv.url, token="ehk_secret", project="vision").get("/runs", status="running", run_ids=[1, 2])
    req = srv.requests[0]
    assert req["headers"]["Authorization"] == "Bearer ehk_secret"
    assert req["headers"]["X-Evalhub-Project"] == "vision"
    assert req["path"].startswith("/api/runs?")
    assert "run_ids=1%2C2" in req["path"] and "status=running" in req["path"]


def test_non_finite_numbers_travel_as_strings() -> None:
    from evalhub.client import encode_json

    body = {"events": [{"value": float("nan")}, {"value": float("-inf")}, {"value": 1.5}]}
    assert encode_json(body) == b'{"events":[{"value":"NaN"},{"value":"-Infinity"},{"value":1.5}]}'
    with pytest.raises(InvalidValue, match="JSON"):
        encode_json({"x": object()})


def test_check_number_names_the_key() -> None:
    assert check_number("loss", 1) == 1.0
    assert check_number("loss", float("inf")) == float("inf")
    with pytest.raises(InvalidValue, match="'loss'"):
        check_number("loss", 10**400)
    with pytest.raises(InvalidValue, match=r"'acc'.*str"):
        check_number("acc", "0.5")


def test_not_found_names_the_object(server_url: str) -> None:
    client = Client(server_url)
    name = f"nope-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFound, match=name) as info:
        client.get(f"/models/{name}")
    assert info.value.status == 404 and info.value.code == "not_found"


def test_duplicate_is_conflict(server_url: str) -> None:
    client = Client(server_url)
    name = f"fam-{uuid.uuid4().hex[:8]}"
    client.post("/families", {"name": name})
    with pytest.raises(Conflict, match=name):
        client.post("/families", {"name": name})


def test_paged_walks_every_page(server_url: str) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    client = Client(server_url, project=project)
    for i in range(7):
        client.post("/families", {"name": f"f{i}"})
    names = [item["name"] for item in client.paged("/families", limit=3)]
    assert sorted(names) == [f"f{i}" for i in range(7)]


def test_projects_are_isolated(server_url: str) -> None:
    a = Client(server_url, project=f"a{uuid.uuid4().hex[:8]}")
    b = Client(server_url, project=f"b{uuid.uuid4().hex[:8]}")
    a.post("/families", {"name": "only-in-a"})
    assert [f["name"] for f in a.paged("/families")] == ["only-in-a"]
    assert list(b.paged("/families")) == []
    with pytest.raises(NotFound):
        b.get("/families/only-in-a")
