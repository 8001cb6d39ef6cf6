"""Token auth: no token 401, admin manages projects and tokens, a project token sees only its project."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from _servers import ServerProcess

ADMIN = "admin-secret-123"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One token-auth server per backend for this module (tests use unique project names)."""
    from _servers import ServerProcess, mysql_database

    folder = tmp_path_factory.mktemp(f"secured-{request.param}")
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{folder / 'evalhub.db'}"
            if request.param == "sqlite"
            else stack.enter_context(mysql_database())
        )
        proc = ServerProcess(url, folder, auth="token", admin_token=ADMIN)
        proc.start()
        stack.callback(proc.stop)
        yield proc


def uniq(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def make_token(url: str, project: str) -> str:
    r = httpx.post(f"{url}/api/projects", json={"name": project}, headers=bearer(ADMIN))
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/projects/{project}/tokens", json={"name": "ci"}, headers=bearer(ADMIN))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["name"] == "ci" and body["project"] == project and body["token"].startswith("ehk_")
    return str(body["token"])


def test_health_is_open_and_says_auth(secured: ServerProcess) -> None:
    assert httpx.get(f"{secured.url}/api/health").json()["auth"] is True


def test_no_token_or_wrong_token_is_401(secured: ServerProcess) -> None:
    r = httpx.get(f"{secured.url}/api/runs")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.get(f"{secured.url}/api/runs", headers=bearer("ehk_wrong"))
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]


def test_project_token_cannot_see_another_projects_objects(secured: ServerProcess) -> None:
    url = secured.url
    a_name = uniq("alpha")
    alpha, beta = make_token(url, a_name), make_token(url, uniq("beta"))
    fam = httpx.post(f"{url}/api/families", json={"name": "fam"}, headers=bearer(alpha))
    assert fam.status_code == 201 and fam.json()["project"] == a_name
    run = httpx.post(f"{url}/api/runs", json={"name": "r"}, headers=bearer(alpha)).json()
    # beta: 404 (never 403) on alpha's objects, and an empty list
    assert httpx.get(f"{url}/api/families/fam", headers=bearer(beta)).status_code == 404
    assert httpx.get(f"{url}/api/families/{fam.json()['id']}", headers=bearer(beta)).status_code == 404
    assert httpx.get(f"{url}/api/runs/{run['id']}", headers=bearer(beta)).status_code == 404
    ev = {"stream": "s", "events": [{"seq": 1, "type": "metrics", "values": {"acc": 1.0}}]}
    assert httpx.post(f"{url}/api/runs/{run['id']}/events", json=ev, headers=bearer(beta)).status_code == 404
    assert httpx.get(f"{url}/api/families", headers=bearer(beta)).json()["total"] == 0
    # the project header cannot widen a project token's reach
    sneaky = bearer(beta, **{"X-Evalhub-Project": a_name})
    assert httpx.get(f"{url}/api/runs/{run['id']}", headers=sneaky).status_code == 404
    assert httpx.get(f"{url}/api/runs/{run['id']}", headers=bearer(alpha)).status_code == 200


def test_only_admin_manages_projects_and_tokens(secured: ServerProcess) -> None:
    gamma = uniq("gamma")
    token = make_token(secured.url, gamma)
    r = httpx.post(f"{secured.url}/api/projects", json={"name": uniq("delta")}, headers=bearer(token))
    assert r.status_code == 401
    r = httpx.post(f"{secured.url}/api/projects/{gamma}/tokens", json={"name": "x"}, headers=bearer(token))
    assert r.status_code == 401
    listed = httpx.get(f"{secured.url}/api/projects", headers=bearer(ADMIN)).json()
    assert gamma in [p["name"] for p in listed["items"]]


def test_duplicate_project_and_unknown_project_token(secured: ServerProcess) -> None:
    eps = uniq("eps")
    make_token(secured.url, eps)
    r = httpx.post(f"{secured.url}/api/projects", json={"name": eps}, headers=bearer(ADMIN))
    assert r.status_code == 409
    r = httpx.post(f"{secured.url}/api/projects/nowhere/tokens", json={"name": "x"}, headers=bearer(ADMIN))
    assert r.status_code == 404


def test_token_survives_a_restart(secured: ServerProcess) -> None:
    token = make_token(secured.url, uniq("zeta"))
    secured.restart()
    assert httpx.get(f"{secured.url}/api/runs", headers=bearer(token)).status_code == 200


def test_cli_token_create_against_server(secured: ServerProcess) -> None:
    import contextlib
    import io

    from evalhub.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["token", "create", uniq("cliproj"), "--name", "ci", "--url", secured.url, "--admin-token", ADMIN]
        )
    assert code == 0
    token = out.getvalue().strip()
    assert httpx.get(f"{secured.url}/api/runs", headers=bearer(token)).status_code == 200


def test_unauth_server_uses_the_project_header(server_url: str) -> None:
    httpx.post(f"{server_url}/api/families", json={"name": "f"}, headers={"X-Evalhub-Project": "left"})
    assert (
        httpx.get(f"{server_url}/api/families/f", headers={"X-Evalhub-Project": "right"}).status_code == 404
    )
    assert httpx.get(f"{server_url}/api/families/f", headers={"X-Evalhub-Project": "left"}).status_code == 200
