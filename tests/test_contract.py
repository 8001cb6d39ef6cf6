"""One contract on both sides of the wire, checked against the route table itself (real servers on
SQLite and MariaDB):

- every route is exercised, and every answer (success or error) validates against the model the route
  declares in OpenAPI (``evalhub.protocol``), which is what the client reads;
- cross-project isolation on every route and method, generated from the route table: another
  project's token gets a 404 for each object, and nothing it tries changes the object.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from evalhub.protocol.responses import Error

ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def routes() -> list[APIRoute]:
    """The server's route table: every route of its routers (each carries its full path)."""
    from evalhub_server.routes import ROUTERS

    found = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(found) > 40
    return found


def _route_of(routes: list[APIRoute], method: str, path: str) -> APIRoute:
    for route in routes:
        if method in route.methods and route.path_regex.match(path):
            return route
    raise AssertionError(f"no route for {method} {path}")


class Checked:
    """An HTTP client that validates every answer against its route's declared model."""

    def __init__(self, url: str, routes: list[APIRoute], headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, headers=headers, timeout=60)
        self.routes = routes
        self.seen: set[tuple[str, str]] = set()

    def call(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, (
            f"{method} {path}: {response.status_code} {response.text[:500]}"
        )
        route = _route_of(self.routes, method, path)
        self.seen.add((method, route.path))
        if response.status_code >= 400:
            Error.model_validate(response.json())
            return response.json()
        if not hasattr(route.response_model, "model_validate"):  # a file download: bytes, no model
            assert route.path.endswith("/artifacts/{name}"), route.path
            return response.content
        body = response.json()
        route.response_model.model_validate(body)  # what the client reads, read the same way
        return body


def _scenario(api: Checked) -> dict[str, Any]:
    """Create one of everything in the caller's project, through every create route; returns the ids."""
    ids: dict[str, Any] = {}
    ids["family"] = api.call("POST", "/api/families", 201, json={"name": "fam", "description": "d"})["id"]
    ids["model"] = api.call("POST", "/api/models", 201, json={"name": "m", "family": "fam", "runtime": "hf"})[
        "id"
    ]
    ids["checkpoint"] = api.call(
        "POST", "/api/checkpoints", 201, json={"name": "c", "model": "m", "uri": "/w", "step": 1}
    )["id"]
    ids["dataset"] = api.call("POST", "/api/datasets", 201, json={"name": "ds", "uri": "/d.jsonl"})["id"]
    ids["task"] = api.call(
        "POST", "/api/tasks", 201, json={"name": "t", "dataset": "ds", "engine_config": {"task": "t"}}
    )["id"]
    ids["benchmark"] = api.call("POST", "/api/benchmarks", 201, json={"name": "b", "tasks": ["t"]})["id"]
    exp = api.call(
        "POST",
        "/api/experiments",
        201,
        json={
            "name": "e",
            "client_key": uuid.uuid4().hex,
            "runs": [{"name": "r", "type": "offline_eval", "model": "m", "checkpoint": "c", "task": "t"}],
        },
    )
    ids["experiment"], ids["run"] = exp["id"], exp["runs"][0]["id"]
    run = ids["run"]
    events = {
        "stream": "attempt-1",
        "attempt": 1,
        "events": [
            {"seq": 1, "type": "status", "status": "running", "worker": {"node": "n"}, "work_key": "ab12"},
            {"seq": 2, "type": "series", "points": [{"key": "loss", "step": s, "value": 1 / (s + 1)} for s in range(30)]},
            {"seq": 3, "type": "metrics", "values": {"acc": 0.5, "acc_stderr": 0.1}, "higher_is_better": {"acc": True}},
            {"seq": 4, "type": "samples", "samples": [{"sample_key": "k1", "index": 0, "output": "1", "primary_score": 1.0, "scores": {"acc": 1.0}}]},
            {"seq": 5, "type": "log", "lines": [{"message": "hello"}]},
        ],
    }  # fmt: skip
    api.call("POST", f"/api/runs/{run}/events", json=events)
    api.call("PUT", f"/api/runs/{run}/artifacts/results.json", 201, content=b'{"ok": true}')
    ids["training"] = api.call("POST", "/api/runs", 201, json={"name": "train", "type": "training"})["id"]
    done = {"stream": "attempt-1", "attempt": 1, "events": [{"seq": 6, "type": "status", "status": "completed"},
                                                             {"seq": 7, "type": "cache", "entries": [{"key": "cd34", "value": "[1.5, true]"}]}]}  # fmt: skip
    api.call("POST", f"/api/runs/{run}/events", json=done)
    page = {"runs": [{"name": "r2", "type": "offline_eval", "model": "m", "checkpoint": "c", "task": "t"}]}
    ids["run2"] = api.call("POST", f"/api/experiments/{ids['experiment']}/runs", json=page)["runs"][0]["id"]
    running = {"stream": "attempt-1", "attempt": 1, "events": [{"seq": 1, "type": "status", "status": "running"}]}
    api.call("POST", f"/api/runs/{ids['run2']}/events", json=running)
    reused = api.call("POST", f"/api/runs/{ids['run2']}/reuse", json={"attempt": 1, "work_key": "ab12"})
    assert reused["reused"] and reused["run"]["reused_from"] == run and reused["run"]["status"] == "completed"
    ids["scoring"] = api.call(
        "POST", "/api/scorings", 201, json={"run_id": run, "name": "em", "kind": "match", "version": "1"}
    )["id"]
    call = {"position": "single", "prompt": "p", "raw_output": "Rating: [[7]]", "verdict": "7", "score": 7.0}
    results = {"items": [{"sample_key": "k1", "scores": {"em.exact_match": 1.0}, "calls": [call]}]}
    api.call("POST", f"/api/scorings/{ids['scoring']}/results", json=results)
    api.call("POST", f"/api/scorings/{ids['scoring']}/finish", json={"metrics": {"em.exact_match": 1.0}})
    queue = {"experiment_id": ids["experiment"], "name": "rate", "schema": {"kind": "scale", "min": 1, "max": 5},
             "run_ids": [run]}  # fmt: skip
    ids["queue"] = api.call("POST", "/api/annotation-queues", 201, json=queue)["id"]
    ids["item"] = api.call("GET", f"/api/annotation-queues/{ids['queue']}/items")["items"][0]["id"]
    ids["trace"] = api.call("POST", "/api/otlp/v1/traces", json=OTLP_SPANS)["run_ids"][0]
    schedule = {"name": "hourly", "spec": {"models": [{"model": "m"}]}, "every_s": 3600, "next_at": 1.0}
    ids["schedule"] = api.call("POST", "/api/schedules", 201, json=schedule)["id"]
    assert api.call("POST", "/api/otlp/v1/logs", json=OTLP_LOGS)["run_ids"] == [ids["trace"]]
    return ids


# OTLP/JSON: one GenAI span of the service "app", and the log record of its answer.
_IDS = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}
_APP = {"attributes": [{"key": "service.name", "value": {"stringValue": "app"}}]}
OTLP_SPANS = {"resourceSpans": [{"resource": _APP, "scopeSpans": [{"spans": [{
    **_IDS, "name": "chat m", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
    "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}],
}]}]}]}  # fmt: skip
OTLP_LOGS = {"resourceLogs": [{"resource": _APP, "scopeLogs": [{"logRecords": [{
    **_IDS, "eventName": "gen_ai.choice",
    "body": {"kvlistValue": {"values": [{"key": "message", "value": {"kvlistValue": {"values": [
        {"key": "content", "value": {"stringValue": "hi"}}]}}}]}},
}]}]}]}  # fmt: skip


def _reads(api: Checked, ids: dict[str, Any]) -> None:
    run, exp = ids["run"], ids["experiment"]
    api.call("GET", "/api/health")
    for kind in ("families", "models", "checkpoints", "datasets", "tasks", "benchmarks"):
        singular = {"families": "family"}.get(kind, kind[:-1])
        api.call("GET", f"/api/{kind}")
        api.call("GET", f"/api/{kind}/{ids[singular]}")
        api.call("PATCH", f"/api/{kind}/{ids[singular]}", json={"description": "x", "tags": {"k": 1}})
    for path in (
        "/api/experiments", f"/api/experiments/{exp}", f"/api/experiments/{exp}/runs", f"/api/experiments/{exp}/compare",
        f"/api/experiments/{exp}/samples", "/api/runs", f"/api/runs/{run}", f"/api/runs/{run}/metrics",
        f"/api/runs/{run}/series/keys", f"/api/runs/{run}/samples", f"/api/runs/{run}/scores", f"/api/runs/{run}/logs", f"/api/runs/{run}/artifacts",
    ):  # fmt: skip
        api.call("GET", path)
    api.call("GET", f"/api/runs/{run}/series", params={"key": "loss", "max_points": 10})
    api.call("GET", f"/api/runs/{run}/series/points", params={"key": "loss", "limit": 10})
    api.call("GET", "/api/series", params={"run_ids": f"{run},{ids['training']}", "key": "loss"})
    api.call("GET", f"/api/runs/{run}/artifacts/results.json")
    api.call("GET", "/api/scorings", params={"run_id": run})
    api.call("GET", f"/api/scorings/{ids['scoring']}")
    api.call("GET", f"/api/runs/{run}/judge-calls")
    api.call("GET", "/api/annotation-queues", params={"experiment_id": exp})
    for part in ("", "/progress", "/labels"):
        api.call("GET", f"/api/annotation-queues/{ids['queue']}{part}")
    api.call("GET", f"/api/runs/{run}/columns", params={"fields": ["score:em.exact_match", "task", "output_chars"]})
    api.call("PATCH", f"/api/runs/{run}", json={"tags": {"a": 1}})
    api.call("PATCH", f"/api/experiments/{exp}", json={"description": "e"})
    assert api.call("POST", "/api/cache/lookup", json={"keys": ["cd34", "ef56"]})["values"] == {"cd34": "[1.5, true]"}
    sid = ids["schedule"]
    api.call("GET", "/api/schedules")
    api.call("GET", f"/api/schedules/{sid}")
    api.call("POST", f"/api/schedules/{sid}/claim", json={"tick": 1.0, "next_at": 3601.0})
    api.call("POST", f"/api/schedules/{sid}/done", json={"tick": 1.0, "experiment_id": exp})


def _removes(api: Checked, ids: dict[str, Any]) -> None:
    run, exp, training = ids["run"], ids["experiment"], ids["training"]
    api.call("POST", f"/api/runs/{training}/status", json={"status": "running"})
    api.call("POST", f"/api/runs/{run}/lost", json={"attempt": 1, "reason": "test"})
    api.call("POST", f"/api/runs/{training}/cancel")
    api.call("POST", f"/api/experiments/{exp}/cancel")
    api.call("POST", f"/api/experiments/{exp}/resume")
    api.call("DELETE", f"/api/runs/{training}")
    api.call("POST", f"/api/runs/{training}/restore")
    api.call("DELETE", f"/api/experiments/{exp}")
    api.call("POST", f"/api/experiments/{exp}/restore")
    api.call("DELETE", f"/api/checkpoints/{ids['checkpoint']}", 409)  # a run refers to it
    api.call("DELETE", f"/api/schedules/{ids['schedule']}")
    for kind, key in (("benchmarks", "benchmark"), ("checkpoints", "checkpoint"), ("tasks", "task"), ("datasets", "dataset"),
                      ("models", "model"), ("families", "family")):  # fmt: skip
        api.call("DELETE", f"/api/{kind}/{ids[key]}", params={"cascade": "true"})
        api.call("POST", f"/api/{kind}/{ids[key]}/restore")


def _labels(api: Checked, ids: dict[str, Any]) -> None:
    """A person labels an item, undoes it, labels it again (the refusals are in test_annotation_server)."""
    path = f"/api/annotation-queues/{ids['queue']}/items/{ids['item']}/label"
    assert api.call("PUT", path, json={"value": 4})["person"] == "alice"
    api.call("DELETE", path)
    api.call("PUT", path, json={"value": 5})


def _admin(api: Checked, project: str) -> None:
    api.call("POST", "/api/projects", 201, json={"name": f"p{uuid.uuid4().hex[:6]}"})
    api.call("GET", "/api/projects")
    api.call("POST", f"/api/projects/{project}/tokens", 201, json={"name": "extra", "expires_in_days": 1})
    api.call("GET", f"/api/projects/{project}/tokens")
    api.call("DELETE", f"/api/projects/{project}/tokens/extra")


@pytest.fixture
def authed(db_url: str, server_for: Callable[..., Any]) -> Iterator[Any]:
    server = server_for(db_url, auth="token", admin_token=ADMIN)
    yield server


def _project(server: Any, name: str) -> str:
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})
    assert admin.post("/api/projects", json={"name": name}).status_code == 201
    token = admin.post(f"/api/projects/{name}/tokens", json={"name": "main"}).json()["token"]
    return str(token)


def test_every_route_answers_the_model_it_declares(authed: Any, routes: list[APIRoute]) -> None:
    name = f"a{uuid.uuid4().hex[:8]}"
    token = _project(authed, name)
    api = Checked(authed.url, routes, {"Authorization": f"Bearer {token}"})
    ids = _scenario(api)
    _reads(api, ids)
    _removes(api, ids)
    api.call("GET", f"/api/runs/{10**12}", 404)
    api.call("GET", "/api/runs", 422, params={"limit": 0})
    admin = Checked(authed.url, routes, {"Authorization": f"Bearer {ADMIN}"})
    _admin(admin, name)
    alice = admin.call("POST", f"/api/projects/{name}/people", 201, json={"name": "alice"})["token"]
    person = Checked(authed.url, routes, {"Authorization": f"Bearer {alice}"})
    _labels(person, ids)
    declared = {(m, r.path) for r in routes for m in r.methods if r.path.startswith("/api/") and "openapi" not in r.path
                and "docs" not in r.path}  # fmt: skip
    missing = declared - api.seen - admin.seen - person.seen
    assert not missing, f"routes the scenario never called: {sorted(missing)}"


# Per route template: the body (or raw content) a well-formed request of another project sends.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "*"): {"json": {"description": "stolen", "tags": {"x": None}}},
    ("POST", "/api/runs/{run_id}/events"): {"json": {"stream": "evil", "events": [{"seq": 1, "type": "log", "lines": [{"message": "x"}]}]}},
    ("POST", "/api/runs/{run_id}/status"): {"json": {"status": "failed", "error": "x"}},
    ("POST", "/api/runs/{run_id}/lost"): {"json": {"attempt": 1, "reason": "x"}},
    ("PUT", "/api/runs/{run_id}/artifacts/{name}"): {"content": b"x"},
    ("POST", "/api/experiments/{exp_id}/runs"): {"json": {"runs": [{"name": "evil", "type": "offline_eval"}]}},
    ("POST", "/api/runs/{run_id}/reuse"): {"json": {"attempt": 1, "work_key": "ab12"}},
    ("POST", "/api/scorings/{scoring_id}/results"): {"json": {"items": [{"sample_key": "k1", "scores": {"em.x": 0.0}}]}},
    ("POST", "/api/scorings/{scoring_id}/finish"): {"json": {"metrics": {"em.x": 0.0}}},
    ("PUT", "/api/annotation-queues/{queue_id}/items/{item_id}/label"): {"json": {"value": 1}},
    ("POST", "/api/projects/{name}/people"): {"json": {"name": "mallory"}},
    ("POST", "/api/schedules/{schedule_id}/claim"): {"json": {"tick": 1.0, "next_at": 2.0}},
    ("POST", "/api/schedules/{schedule_id}/done"): {"json": {"tick": 1.0, "experiment_id": 1}},
}  # fmt: skip


def test_another_projects_token_gets_404_on_every_route_and_method(
    authed: Any, routes: list[APIRoute]
) -> None:
    owner_name, other_name = f"o{uuid.uuid4().hex[:8]}", f"x{uuid.uuid4().hex[:8]}"
    owner = Checked(authed.url, routes, {"Authorization": f"Bearer {_project(authed, owner_name)}"})
    other = httpx.Client(
        base_url=authed.url, headers={"Authorization": f"Bearer {_project(authed, other_name)}"}
    )
    ids = _scenario(owner)
    values = {
        "run_id": ids["run"], "exp_id": ids["experiment"], "name": "results.json",
        "token": "main", "scoring_id": ids["scoring"], "queue_id": ids["queue"], "item_id": ids["item"],
        "schedule_id": ids["schedule"],
    }  # fmt: skip
    refs = {"families": "family", "models": "model", "checkpoints": "checkpoint", "datasets": "dataset", "tasks": "task",
            "benchmarks": "benchmark"}  # fmt: skip
    checked = 0
    for route in routes:
        if "{" not in route.path or not route.path.startswith("/api/"):
            continue
        for method in sorted(route.methods):
            path = route.path
            if "{ref}" in path:
                kind = path.split("/")[2]
                path = path.replace("{ref}", str(ids[refs[kind]]))
            if path.startswith("/api/projects/{name}"):
                path = path.replace("{name}", owner_name, 1)
            for key, value in values.items():
                path = path.replace("{" + key + "}", str(value))
            body = BODIES.get((method, route.path)) or (BODIES[("PATCH", "*")] if method == "PATCH" else {})
            params: dict[str, str] | None = None
            if "/series" in route.path and not route.path.endswith("/keys"):
                params = {"key": "loss"}
            elif route.path.endswith("/columns"):
                params = {"fields": "task"}
            answer = other.request(method, path, params=params, **body)
            wanted = (
                401 if route.path.startswith("/api/projects") else 404
            )  # a project token may not manage tokens
            assert answer.status_code == wanted, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
            Error.model_validate(answer.json())
            checked += 1
    assert checked >= 40
    many = other.get("/api/series", params={"run_ids": str(ids["run"]), "key": "loss"})
    assert many.status_code == 404
    # the OTLP routes name no object: what another project sends lands in a trace run of its own
    sent = other.post("/api/otlp/v1/traces", json=OTLP_SPANS)
    assert sent.status_code == 200 and ids["trace"] not in sent.json()["run_ids"]
    assert owner.call("GET", f"/api/runs/{ids['trace']}/samples")["items"][0]["output"] == "hi"
    # nothing the other project tried changed the owner's objects
    assert owner.call("GET", f"/api/runs/{ids['run']}")["archived_at"] is None
    assert owner.call("GET", f"/api/families/{ids['family']}")["description"] == "d"
    assert owner.call("GET", f"/api/runs/{ids['run']}/logs")["total"] == 1
    assert owner.call("GET", f"/api/experiments/{ids['experiment']}")["archived_at"] is None


def test_the_openapi_document_declares_bodies_errors_and_limits(authed: Any) -> None:
    doc = httpx.get(f"{authed.url}/api/openapi.json").json()
    run = doc["paths"]["/api/runs/{run_id}"]["get"]
    assert run["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Run")
    for status in ("401", "404", "422"):
        assert run["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    limit = next(p for p in doc["paths"]["/api/runs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    step = doc["components"]["schemas"]["Point"]["properties"]["step"]
    assert step["maximum"] == 2**63 - 1 and step["minimum"] == -(2**63)
    health = httpx.get(f"{authed.url}/api/health").json()
    prompt = doc["components"]["schemas"]["Sample"]["properties"]["prompt"]["anyOf"][0]
    assert prompt["maxLength"] == health["max_text_bytes"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # errors are the uniform body


def test_a_client_newer_than_the_server_is_refused_naming_both(authed: Any) -> None:
    answer = httpx.get(f"{authed.url}/api/families", headers={"X-Evalhub-Protocol": "99"})
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "protocol 3" in message and "protocol 99" in message and "upgrade the server" in message


def test_docs_openapi_json_is_the_generated_contract() -> None:
    """docs/openapi.json is the contract as the server generates it (scripts/openapi rewrites it)."""
    import json

    from evalhub_server.app import openapi_document

    committed = json.loads((Path(__file__).parent.parent / "docs" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(openapi_document())), (
        "docs/openapi.json is stale: run scripts/openapi"
    )
