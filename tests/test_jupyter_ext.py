"""The evalhub_jupyter server extension: ``/evalhub/api/*`` proxied to a real tracking server
(``python -m evalhub_server`` from the conftest fixtures), ``/evalhub/config``, and refusals.

The Jupyter server is pytest-jupyter's real ServerApp (``jp_fetch``), with the extension loaded
the way a user's Jupyter loads it (``jpserver_extensions``)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from evalhub_jupyter._settings import EvalhubJupyter, NoServer, ray_dashboard_url, resolve_upstream

# pytest-jupyter's fixtures for this module only (a `pytest_plugins` line would register its
# autouse fixtures for every test of the session).
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPResponse


@pytest.fixture
def fetch(jp_fetch: Any, jp_asyncio_loop: Any) -> Any:
    """``jp_fetch`` made synchronous (pytest-jupyter's coroutine-test hooks are not loaded here)."""

    def call(*parts: str, **kwargs: Any) -> HTTPResponse:
        return jp_asyncio_loop.run_until_complete(jp_fetch(*parts, **kwargs))  # type: ignore[no-any-return]

    return call


def _project() -> str:
    return f"jx{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project() -> str:
    return _project()


@pytest.fixture
def proxy_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``c.EvalhubJupyter`` in the Jupyter server's config (parametrize indirectly to change it)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(proxy_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"evalhub_jupyter": True}},
        "EvalhubJupyter": proxy_settings,
    }


@pytest.fixture
def evalhub(jp_serverapp: Any) -> EvalhubJupyter:
    """The running extension's settings; read on every request, so a test may change them."""
    settings = jp_serverapp.web_app.settings["evalhub_jupyter"]
    assert isinstance(settings, EvalhubJupyter)
    return settings


@pytest.fixture
def configured(evalhub: EvalhubJupyter, server_url: str, project: str) -> str:
    """The proxy pointed at the module's real tracking server, in a project of its own."""
    evalhub.server_url = server_url
    evalhub.project = project
    return server_url


def _json(response: HTTPResponse) -> Any:
    return json.loads(response.body.decode())


def _json_headers() -> dict[str, str]:
    """What JupyterLab's ServerConnection sends with a body (a fresh dict: jp_fetch adds to it)."""
    return {"Content-Type": "application/json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _create_experiment(server_url: str, project: str, name: str = "exp") -> dict[str, Any]:
    body = {
        "name": name,
        "spec": {"name": name},
        "config": {},
        "runs": [
            {"name": f"{name}-r1", "type": "offline_eval"},
            {"name": f"{name}-r2", "type": "offline_eval"},
        ],
    }
    r = httpx.post(f"{server_url}/api/experiments", json=body, headers={"X-Evalhub-Project": project})
    r.raise_for_status()
    return dict(r.json())


def test_get_is_proxied_to_the_tracking_server(fetch: Any, configured: str, project: str) -> None:
    created = _create_experiment(configured, project, "proxied-get")
    response = fetch("evalhub", "api", "experiments", params={"limit": "5"})
    assert response.code == 200
    page = _json(response)
    assert [e["id"] for e in page["items"]] == [created["id"]]
    assert page["limit"] == 5
    assert page["items"][0]["counts"]["queued"] == 2


def test_health_answers_through_the_proxy(fetch: Any, configured: str) -> None:
    response = fetch("evalhub", "api", "health")
    assert _json(response)["status"] == "ok"
    assert response.headers["Content-Type"].startswith("application/json")


def test_post_is_proxied_with_its_body(fetch: Any, configured: str, project: str) -> None:
    response = fetch(
        "evalhub",
        "api",
        "families",
        method="POST",
        body=json.dumps({"name": "tiny-gpt", "modality": "llm"}),
        headers=_json_headers(),
    )
    assert response.code == 201
    stored = httpx.get(f"{configured}/api/families/tiny-gpt", headers={"X-Evalhub-Project": project})
    assert stored.status_code == 200
    assert stored.json()["modality"] == "llm"


def test_progress_events_posted_through_the_proxy_show_in_reads(
    fetch: Any, configured: str, project: str
) -> None:
    run_id = _create_experiment(configured, project, "progress")["runs"][0]["id"]
    events = {
        "stream": "attempt-1",
        "events": [
            {"seq": 1, "type": "status", "status": "running", "worker": {"node": "n", "pid": 1, "gpu": None}},
            {"seq": 2, "type": "progress", "done": 7, "total": 20},
        ],
    }
    answer = fetch(
        "evalhub",
        "api",
        "runs",
        str(run_id),
        "events",
        method="POST",
        body=json.dumps(events),
        headers=_json_headers(),
    )
    assert _json(answer)["applied"] == 2
    running = _json(fetch("evalhub", "api", "runs", params={"status": "running"}))
    assert [(r["id"], r["progress"]) for r in running["items"]] == [(run_id, {"done": 7, "total": 20})]


def test_not_found_passes_through_with_status_and_body(fetch: Any, configured: str) -> None:
    response = fetch("evalhub", "api", "experiments", "987654", raise_error=False)
    assert response.code == 404
    assert _json(response)["error"]["code"] == "not_found"


def test_conflict_passes_through(fetch: Any, configured: str) -> None:
    body = json.dumps({"name": "dup", "modality": "llm"})
    first = fetch("evalhub", "api", "families", method="POST", body=body, headers=_json_headers())
    assert first.code == 201
    second = fetch(
        "evalhub", "api", "families", method="POST", body=body, headers=_json_headers(), raise_error=False
    )
    assert second.code == 409
    assert _json(second)["error"]["code"] == "conflict"


def test_invalid_body_passes_through_with_field(fetch: Any, configured: str, project: str) -> None:
    run_id = _create_experiment(configured, project, "nan")["runs"][0]["id"]
    # A step outside 64 bits is refused by the server; the proxy must hand back its 422 untouched.
    bad = '{"stream": "s", "events": [{"seq": 1, "type": "progress", "done": 9223372036854775808}]}'
    response = fetch(
        "evalhub",
        "api",
        "runs",
        str(run_id),
        "events",
        method="POST",
        body=bad,
        headers=_json_headers(),
        raise_error=False,
    )
    assert response.code in (400, 422)
    assert _json(response)["error"]["code"] == "invalid"


def test_raw_bytes_round_trip_through_put_and_get(fetch: Any, configured: str, project: str) -> None:
    run_id = _create_experiment(configured, project, "bytes")["runs"][0]["id"]
    payload = bytes(range(256)) * 4
    put = fetch(
        "evalhub", "api", "runs", str(run_id), "artifacts", "blob.bin", method="PUT", body=payload,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert put.code == 201
    assert _json(put)["size"] == len(payload)
    got = fetch("evalhub", "api", "runs", str(run_id), "artifacts", "blob.bin")
    assert got.body == payload


def test_browser_project_header_is_forwarded_when_none_is_configured(
    fetch: Any, server_url: str, evalhub: EvalhubJupyter
) -> None:
    evalhub.server_url = server_url
    project = _project()
    created = _create_experiment(server_url, project, "by-header")
    response = fetch("evalhub", "api", "experiments", headers={"X-Evalhub-Project": project})
    assert [e["id"] for e in _json(response)["items"]] == [created["id"]]


def test_wrong_jupyter_token_is_refused(fetch: Any, configured: str) -> None:
    headers = {"Authorization": "token not-the-token"}
    for parts, method, body in [
        (("evalhub", "api", "experiments"), "GET", None),
        (("evalhub", "api", "families"), "POST", json.dumps({"name": "x", "modality": "llm"})),
        (("evalhub", "config"), "GET", None),
    ]:
        response = fetch(*parts, method=method, body=body, headers=headers, raise_error=False)
        assert response.code == 403, parts


def test_request_without_credentials_is_refused(
    fetch: Any, jp_serverapp: Any, configured: str, project: str
) -> None:
    # No token and no cookie at all: nothing reaches the tracking server.
    response = fetch("evalhub", "api", "families", headers={"Authorization": ""}, raise_error=False)
    assert response.code == 403
    post = fetch(
        "evalhub", "api", "families", method="POST", body=json.dumps({"name": "sneaky", "modality": "llm"}),
        headers={"Authorization": "", **_json_headers()}, raise_error=False,
    )  # fmt: skip
    assert post.code == 403
    stored = httpx.get(f"{configured}/api/families/sneaky", headers={"X-Evalhub-Project": project})
    assert stored.status_code == 404


def test_jupyter_token_never_reaches_the_tracking_server(
    fetch: Any, server_for: Any, evalhub: EvalhubJupyter
) -> None:
    # A token-auth tracking server: the proxy must send the configured evalhub token, not Jupyter's.
    admin = "admin-" + uuid.uuid4().hex
    srv = server_for(auth="token", admin_token=admin)
    auth = {"Authorization": f"Bearer {admin}"}
    httpx.post(f"{srv.url}/api/projects", json={"name": "team"}, headers=auth).raise_for_status()
    token = httpx.post(f"{srv.url}/api/projects/team/tokens", json={"name": "lab"}, headers=auth).json()[
        "token"
    ]
    evalhub.server_url = srv.url  # no token yet: Jupyter's own must not leak through
    refused = fetch("evalhub", "api", "experiments", raise_error=False)
    assert refused.code == 401
    assert _json(refused)["error"]["code"] == "unauthorized"
    evalhub.token = token
    ok = fetch("evalhub", "api", "experiments")
    assert _json(ok)["total"] == 0


def test_dot_dot_paths_are_refused(fetch: Any, configured: str) -> None:
    response = fetch("evalhub", "api", "x", "..", "..", "etc", raise_error=False)
    assert response.code == 400
    assert "not allowed" in _json(response)["error"]["message"]


def test_unreachable_server_answers_502_naming_it(fetch: Any, evalhub: EvalhubJupyter) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    evalhub.server_url = url
    response = fetch("evalhub", "api", "health", raise_error=False)
    assert response.code == 502
    error = _json(response)["error"]
    assert error["code"] == "unavailable"
    assert url in error["message"]


def test_no_server_answers_503_saying_what_to_do(
    fetch: Any, tmp_path: Path, evalhub: EvalhubJupyter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVALHUB_URL", raising=False)
    evalhub.evalhub_home = str(tmp_path / "empty-home")
    response = fetch("evalhub", "api", "experiments", raise_error=False)
    assert response.code == 503
    message = _json(response)["error"]["message"]
    assert "EVALHUB_URL" in message
    assert "evalhub.connect()" in message


def test_embedded_server_json_is_followed(
    fetch: Any, server: Any, tmp_path: Path, evalhub: EvalhubJupyter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVALHUB_URL", raising=False)
    home = tmp_path / "evalhub-home"
    home.mkdir()
    (home / "server.json").write_text(json.dumps({"url": server.url, "pid": server.proc.pid}))
    evalhub.evalhub_home = str(home)
    health = fetch("evalhub", "api", "health")
    assert _json(health)["status"] == "ok"
    config = _json(fetch("evalhub", "config"))
    assert (config["server_url"], config["source"]) == (server.url, "embedded")


def test_stale_server_json_names_the_dead_pid(
    fetch: Any, server: Any, tmp_path: Path, evalhub: EvalhubJupyter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVALHUB_URL", raising=False)
    home = tmp_path / "evalhub-home"
    home.mkdir()
    pid = server.proc.pid
    (home / "server.json").write_text(json.dumps({"url": server.url, "pid": pid}))
    server.stop()
    evalhub.evalhub_home = str(home)
    response = fetch("evalhub", "api", "health", raise_error=False)
    assert response.code == 503
    assert f"pid {pid}" in _json(response)["error"]["message"]


def test_environment_names_the_server(fetch: Any, server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_URL", server_url)
    project = _project()
    monkeypatch.setenv("EVALHUB_PROJECT", project)
    created = _create_experiment(server_url, project, "env")
    response = fetch("evalhub", "api", "experiments", str(created["id"]))
    assert _json(response)["name"] == "env"
    config = _json(fetch("evalhub", "config"))
    assert (config["server_url"], config["source"], config["project"]) == (server_url, "env", project)


@pytest.mark.parametrize(
    "proxy_settings",
    [{"ray_dashboard_url": "http://dash.example:8265", "request_timeout": 5.0}],
    indirect=True,
)
def test_config_traits_reach_the_extension(fetch: Any, evalhub: EvalhubJupyter) -> None:
    assert evalhub.request_timeout == 5.0
    config = _json(fetch("evalhub", "config"))
    assert config["ray_dashboard_url"] == "http://dash.example:8265"


def test_config_gives_ray_dashboard_and_server(
    fetch: Any, configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head.example:10001")
    monkeypatch.delenv("EVALHUB_RAY_DASHBOARD", raising=False)
    config = _json(fetch("evalhub", "config"))
    assert config["ray_dashboard_url"] == "http://head.example:8265"
    assert config["server_url"] == configured
    assert config["source"] == "config"
    assert config["problem"] is None
    assert config["api_base"].endswith("/evalhub/api")


# The precedence rules, on their own (no server needed).


def test_traits_win_over_environment() -> None:
    settings = EvalhubJupyter(server_url="http://a:1/", token="t1")
    up = resolve_upstream(settings, {"EVALHUB_URL": "http://b:2", "EVALHUB_TOKEN": "t2"})
    assert (up.url, up.token, up.source) == ("http://a:1", "t1", "config")


def test_environment_wins_over_server_json(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text(json.dumps({"url": "http://c:3", "pid": os.getpid()}))
    env = {"EVALHUB_URL": "http://b:2", "EVALHUB_HOME": str(tmp_path)}
    assert resolve_upstream(EvalhubJupyter(), env).source == "env"
    assert resolve_upstream(EvalhubJupyter(), {"EVALHUB_HOME": str(tmp_path)}).url == "http://c:3"


def test_unreadable_server_json_is_a_clear_refusal(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text("{not json")
    with pytest.raises(NoServer, match="cannot read"):
        resolve_upstream(EvalhubJupyter(), {"EVALHUB_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"EVALHUB_RAY_DASHBOARD": "http://dash:9999"}, "http://dash:9999"),
        ({"RAY_ADDRESS": "http://head:8265/"}, "http://head:8265"),
        ({"RAY_ADDRESS": "head.internal:6379"}, "http://head.internal:8265"),
        ({"RAY_ADDRESS": "auto"}, "http://127.0.0.1:8265"),
        ({}, None),
    ],
)
def test_ray_dashboard_url_derivation(env: dict[str, str], expected: str | None, tmp_path: Path) -> None:
    assert ray_dashboard_url(EvalhubJupyter(), env, local_ray_file=tmp_path / "none") == expected


def test_a_running_local_ray_gets_its_default_dashboard(tmp_path: Path) -> None:
    (tmp_path / "ray_current_cluster").write_text("127.0.0.1:6379")
    assert ray_dashboard_url(EvalhubJupyter(), {}, local_ray_file=tmp_path / "ray_current_cluster") == (
        "http://127.0.0.1:8265"
    )
