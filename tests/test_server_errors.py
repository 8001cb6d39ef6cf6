"""Bad input gets a clear 4xx with the uniform error body, never a 500 (real server, both backends)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from _servers import ServerProcess


@pytest.fixture
def http(any_server: ServerProcess) -> Iterator[httpx.Client]:
    project = f"e{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=any_server.url, headers={"X-Evalhub-Project": project}, timeout=60) as c:
        yield c


def raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert set(body) == {"code", "message", "field"}
    return dict(body)


def new_run(http: httpx.Client) -> int:
    return int(http.post("/api/runs", json={"name": "r"}).json()["id"])


def test_non_finite_values_are_stored_and_read_back(http: httpx.Client) -> None:
    """NaN and ±inf are values (a diverging loss is data), sent as JSON's NaN/Infinity tokens or as the
    wire's "NaN"/"Infinity"/"-Infinity" strings, and read back as the strings."""
    rid = new_run(http)
    body = (
        '{"stream": "s", "events": ['
        '{"seq": 1, "type": "series", "points": [{"key": "l", "step": 1, "value": NaN}, '
        '{"key": "l", "step": 2, "value": "Infinity"}, {"key": "l", "step": 3, "value": -Infinity}, '
        '{"key": "l", "step": 4, "value": 1.5}]},'
        '{"seq": 2, "type": "metrics", "values": {"acc": Infinity, "loss": "NaN"}},'
        '{"seq": 3, "type": "samples", "samples": [{"sample_key": "k", "scores": {"em": -Infinity}}]}]}'
    )
    r = raw(http, f"/api/runs/{rid}/events", body)
    assert r.status_code == 200, r.text
    points = http.get(f"/api/runs/{rid}/series", params={"key": "l"}).json()["points"]
    assert [p["value"] for p in points] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert http.get(f"/api/runs/{rid}/metrics").json()["metrics"] == {"acc": "Infinity", "loss": "NaN"}
    sample = http.get(f"/api/runs/{rid}/samples").json()["items"][0]
    assert sample["scores"] == {"em": "-Infinity"}
    keys = http.get(f"/api/runs/{rid}/series/keys").json()["keys"]
    assert keys[0]["last_value"] == 1.5 and keys[0]["count"] == 4


def test_nan_inside_free_metadata_is_refused(http: httpx.Client) -> None:
    err = error(raw(http, "/api/families", '{"name": "f", "metadata": {"a": [1, NaN]}}'), 422)
    assert err["field"] == "body.metadata" and "a[1]" in err["message"]


def test_wrong_type_names_the_field(http: httpx.Client) -> None:
    rid = new_run(http)
    bad = {
        "stream": "s",
        "events": [{"seq": 1, "type": "series", "points": [{"key": "l", "step": "ten", "value": 1}]}],
    }
    err = error(http.post(f"/api/runs/{rid}/events", json=bad), 422)
    assert err["field"] == "body.events.0.points.0.step"
    err = error(http.post("/api/checkpoints", json={"name": "c", "model": "m", "uri": "u", "step": [1]}), 422)
    assert err["field"] == "body.step"


def test_missing_field_is_named(http: httpx.Client) -> None:
    err = error(http.post("/api/models", json={"name": "m", "runtime": "hf"}), 422)
    assert err["field"] == "body.family" and "body.family" in err["message"]


def test_bad_json_is_invalid(http: httpx.Client) -> None:
    err = error(raw(http, "/api/families", '{"name": "f",'), 422)
    assert err["code"] == "invalid" and "JSON" in err["message"]


def test_unknown_event_type_and_bad_seq_are_refused(http: httpx.Client) -> None:
    rid = new_run(http)
    error(
        http.post(f"/api/runs/{rid}/events", json={"stream": "s", "events": [{"seq": 1, "type": "weird"}]}),
        422,
    )
    bad_seq = {"stream": "s", "events": [{"seq": 0, "type": "log", "lines": []}]}
    assert error(http.post(f"/api/runs/{rid}/events", json=bad_seq), 422)["field"] == "body.events.0.seq"


def test_unknown_ids_are_404(http: httpx.Client) -> None:
    for path in (
        "/api/runs/987654",
        "/api/runs/987654/metrics",
        "/api/runs/987654/series?key=l",
        "/api/experiments/987654",
        "/api/experiments/987654/compare",
        "/api/experiments/987654/samples",
        "/api/models/ghost",
        "/api/families/123456",
        "/api/checkpoints/123456",
    ):
        assert error(http.get(path), 404)["code"] == "not_found", path
    ev = {"stream": "s", "events": [{"seq": 1, "type": "log", "lines": []}]}
    error(http.post("/api/runs/987654/events", json=ev), 404)
    error(http.post("/api/runs/987654/status", json={"status": "running"}), 404)


def test_non_integer_id_is_422(http: httpx.Client) -> None:
    assert error(http.get("/api/runs/abc"), 422)["field"] == "path.run_id"


def test_page_limit_is_bounded(http: httpx.Client) -> None:
    assert error(http.get("/api/runs", params={"limit": 1001}), 422)["field"] == "query.limit"
    assert error(http.get("/api/runs", params={"offset": -1}), 422)["field"] == "query.offset"


def test_bad_project_header_is_422(any_server: ServerProcess) -> None:
    r = httpx.get(f"{any_server.url}/api/runs", headers={"X-Evalhub-Project": "bad name!"})
    assert error(r, 422)["field"] == "header.x-evalhub-project"


def test_never_500_on_assorted_bad_input(http: httpx.Client) -> None:
    rid = new_run(http)
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/api/families", "[]"),
        ("POST", "/api/families", '"text"'),
        ("POST", "/api/families", '{"name": ""}'),
        ("POST", "/api/families", '{"name": "x" , "metadata": {"big": 123456789012345678901234567890}}'),
        ("POST", "/api/experiments", '{"name": "e", "runs": [{"name": 5}]}'),
        ("POST", f"/api/runs/{rid}/events", '{"stream": "s", "events": "nope"}'),
        ("POST", f"/api/runs/{rid}/events", '{"stream": "", "events": []}'),
        ("POST", f"/api/runs/{rid}/status", "{}"),
        ("GET", "/api/series?run_ids=1,x&key=l", None),
        ("GET", f"/api/runs/{rid}/series?key=l&max_points=0", None),
        ("GET", f"/api/runs/{rid}/series?key=l&min_step=abc", None),
        ("PUT", f"/api/runs/{rid}/artifacts/a%2Fb", b"x"),
    ]
    for method, path, body in cases:
        content = body.encode() if isinstance(body, str) else body
        r = http.request(method, path, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["code"] in ("invalid", "not_found", "conflict"), r.text


@pytest.fixture
def small_server(server_for: Callable[..., ServerProcess]) -> ServerProcess:
    return server_for(max_request_bytes=1000)


def test_oversize_body_by_content_length_is_413(small_server: ServerProcess) -> None:
    r = httpx.post(f"{small_server.url}/api/families", json={"name": "f", "description": "x" * 2000})
    err = error(r, 413)
    assert err["code"] == "too_large" and "1000" in err["message"]


def test_oversize_streamed_body_is_413(small_server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "f", "description": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    r = httpx.post(
        f"{small_server.url}/api/families", content=chunks(), headers={"Content-Type": "application/json"}
    )  # chunked: no Content-Length
    assert error(r, 413)["code"] == "too_large"
    ok = httpx.post(f"{small_server.url}/api/families", json={"name": "small"})
    assert ok.status_code == 201
